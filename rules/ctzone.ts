// Which conntrack zones a flower rule names: what ties rules together through
// one conntrack table (agent/zones.ts maps them per VM; the translator keeps a
// zone wholly offloaded or wholly in the guest).
import type { FlowerRule } from './model.js';

/**
 * The guest zones a rule uses: the zones of the ct actions it can reach (0
 * unless given; not ct clear; an action after a verdict that ends the list
 * never runs) and an exact ct_zone match.
 */
export function guestZones(rule: FlowerRule): number[] {
  const out = new Set<number>();
  for (const a of rule.actions) {
    if (a.kind === 'ct' && !a.clear) out.add(a.zone ?? 0);
    if (a.control.kind !== 'pipe') break;
  }
  const m = rule.match.ctZone;
  if (m && m.mask === 0xffff) out.add(m.value);
  return [...out];
}
