// A rule for a failure report: tc syntax, or JSON when it has none (partial
// pedit words a guest OVS emits over netlink, values only netlink can carry).
import type { FlowerRule } from '../../rules/model.js';
import { printFilter } from '../../rules/tcsyntax/index.js';

export function shown(r: FlowerRule): string {
  try {
    return printFilter(r).join(' ');
  } catch {
    return JSON.stringify(r);
  }
}
