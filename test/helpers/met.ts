// Which filters a packet met, from a classifier trace, and the share of
// packets that meet a rule which offloaded flows handle (issue 11: "99% of
// packets that meet a rule are handled by offloaded flows"), with the causes
// of the rest. Shared by the property test (translation level) and the
// offload tier (datapath level).
import type { FlowerRule } from '../../rules/model.js';
import type { Outcome } from '../../rules/packet.js';

/** The filters on `inDev` a trace went through (a step names chain, prio and handle; handle 0 names the prio). */
export function rulesMet(rules: FlowerRule[], inDev: string, trace: Outcome['trace']): FlowerRule[] {
  return rules.filter((r) => r.dev === inDev && trace.some((s) => s.chain === r.chain && s.prio === r.prio && (!s.handle || !r.handle || s.handle === r.handle)));
}

/** A reason as a count key: numbers folded, so one cause over many rules is one line. */
export const causeKey = (why: string) => why.replace(/\d+/g, 'N').slice(0, 140);

/** Packets that meet a rule, and how many of them offloaded flows handled, by cause otherwise. */
export class Share {
  met = 0;
  handled = 0;
  skipHw = 0;
  causes = new Map<string, number>();

  add(handled: boolean, cause: string): void {
    this.met++;
    if (handled) this.handled++;
    else this.causes.set(cause, (this.causes.get(cause) ?? 0) + 1);
  }

  line(what: string): string {
    const pct = this.met ? ((100 * this.handled) / this.met).toFixed(1) : '-';
    const causes = [...this.causes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${n} ${c}`).join('; ') || 'none';
    return `${what}: ${this.handled}/${this.met} (${pct}%) of packets that meet a rule handled by offloaded flows${this.skipHw ? ` (${this.skipHw} meeting skip_hw rules left out)` : ''}; the rest: ${causes}`;
  }
}
