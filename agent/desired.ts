// The flows a VM's bridge must hold in switchdev mode, kept by tcf_proto group
// (dev, direction, chain, prio) as ovn-controller's ofctrl keeps a desired
// table: a change of a few groups replaces their flows and yields the cookie
// difference, without translating or diffing the VM's other rules.
import type { RuleResult, Translation } from '../translator/index.js';
import { cookieKind, cookieRuleId, FlowKind } from '../translator/cookie.js';
import type { OfFlow, OfMeter } from '../ovs/openflow/flow.js';
import type { FlowDiff } from '../ovs/openflow/diff.js';
import type { RuleEntry } from './records.js';
import { groupKey } from './group.js';

export interface GroupFlows {
  flows: OfFlow[];
  perRule: Map<number, RuleResult>;
}

export class DesiredFlows {
  private constructor(
    /** Table 0 and the chain links: they depend on the layout and ports only. */
    private readonly structure: OfFlow[],
    private readonly groups: Map<string, OfFlow[]>,
    readonly perRule: Map<number, RuleResult>,
    readonly tables: Map<string, number>,
    readonly meters: OfMeter[],
    private total: number,
    /** A rule was left to software for a loop of chains, which a change to any goto may undo. */
    readonly loops: boolean,
    /** Later chains' rules have flows for deferred mirror copies, which depend on every rule (translator/actions.ts). */
    readonly pendingMirrors: boolean,
  ) {}

  /** From a whole translation of `rules`. */
  static of(t: Translation, rules: readonly RuleEntry[]): DesiredFlows {
    const keyOf = new Map(rules.map((e) => [e.id, groupKey(e.rule)]));
    const structure: OfFlow[] = [];
    const groups = new Map<string, OfFlow[]>();
    for (const k of keyOf.values()) if (!groups.has(k)) groups.set(k, []);
    for (const f of t.flows) {
      const k = cookieKind(f.cookie) === FlowKind.DEFAULT ? undefined : keyOf.get(cookieRuleId(f.cookie));
      if (k === undefined) structure.push(f);
      else groups.get(k)!.push(f);
    }
    return new DesiredFlows(structure, groups, new Map(t.perRule), t.tables, t.meters, t.flows.length, !!t.loops, !!t.pendingMirrors);
  }

  get count(): number {
    return this.total;
  }

  /** Every desired flow (for a full reconcile). */
  flows(): OfFlow[] {
    const out = this.structure.slice();
    for (const g of this.groups.values()) for (const f of g) out.push(f);
    return out;
  }

  /** Whether the group had rules at the last change (a group that comes or goes changes the layout). */
  has(key: string): boolean {
    return this.groups.has(key);
  }

  /** The flow count once `next` replaces its groups. */
  countWith(next: Map<string, GroupFlows>): number {
    let n = this.total;
    for (const [k, g] of next) n += g.flows.length - (this.groups.get(k)?.length ?? 0);
    return n;
  }

  /** Replaces the flows of `next`'s groups and forgets `removed` rules; returns what OVS must change. */
  replace(next: Map<string, GroupFlows>, removed: readonly number[]): FlowDiff {
    const add: OfFlow[] = [];
    const del: bigint[] = [];
    for (const [k, g] of next) {
      const old = this.groups.get(k) ?? [];
      const had = new Set(old.map((f) => f.cookie));
      const has = new Set(g.flows.map((f) => f.cookie));
      for (const c of had) if (!has.has(c)) del.push(c);
      for (const f of g.flows) if (!had.has(f.cookie)) add.push(f);
      this.total += g.flows.length - old.length;
      this.groups.set(k, g.flows);
      for (const [id, r] of g.perRule) this.perRule.set(id, r);
    }
    for (const id of removed) this.perRule.delete(id);
    return { add, del };
  }
}
