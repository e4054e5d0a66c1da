// What a VM's state looks like from outside, read-only: per-rule counters as
// tc reports them, VF counters as ip reports them, and explain (each rule
// beside the flows OVS holds for it). Computed on demand from the installed
// flows; nothing here changes state. The admin API serves these shapes.
import type { Logger } from 'pino';
import type { FilterStats, FlowerRule, PoliceAction } from '../rules/model.js';
import type { VfStats } from '../rules/vf.js';
import { printFilter } from '../rules/tcsyntax/index.js';
import { cookieKind, cookieKindName, cookieRuleId, FlowKind } from '../translator/cookie.js';
import type { FlowInstaller, MeterStats } from '../ovs/ctl/ofctl.js';
import type { ActCounters } from '../rules/netlink/actions.js';
import type { DumpStats } from '../rules/netlink/tc.js';
import type { InstalledFlow } from '../ovs/openflow/diff.js';
import { textFlowLine } from '../ovs/openflow/flow.js';
import type { RuleHardware } from './hwfacts.js';
import type { VmRecord } from './records.js';
import type { FlowSync } from './flowsync.js';
import type { VfState } from './vfstate.js';
import { actionReach, zeroStats, type Counted } from './filters.js';

/** Ethernet header bytes OVS counts and tc does not (tc-offload.rst: TC byte counts exclude L2). */
const L2_HEADER = 14;

export interface RuleView {
  id: number;
  rule: FlowerRule;
  stats: FilterStats;
  /** Why the rule is not in hardware, when it is not. */
  notOffloadedReason?: string;
}

export interface ExplainedFlow {
  /** The flow as `ovs-ofctl dump-flows` shows it (cookie, table, priority, match, actions). */
  line: string;
  cookie: string;
  kind: string;
  packets: number;
  bytes: number;
}

export interface ExplainedRule extends RuleView {
  /** The rule in tc syntax (args after `tc filter add`). */
  tc: string;
  flows: ExplainedFlow[];
}

export interface ExplainReport {
  vm: string;
  bridge: string;
  rules: ExplainedRule[];
  /** Flows that belong to no rule (defaults, legacy switch, restore). */
  other: ExplainedFlow[];
}

/** A meter's OFPMP_METER_STATS as act_police.c counts: every packet in (bytes as tc counts them), the drop band's dropped and over the limit. */
function meterCounters(m: MeterStats): ActCounters {
  const dropped = meterDropped(m);
  return { packets: m.packets, bytes: Math.max(0, m.bytes - L2_HEADER * m.packets), drops: dropped.packets, overlimits: dropped.packets };
}

/** What a meter's drop band dropped, bytes as tc counts them. */
function meterDropped(m: MeterStats): Counted {
  const packets = m.bands.reduce((n, b) => n + b.packets, 0);
  return { packets, bytes: Math.max(0, m.bands.reduce((n, b) => n + b.bytes, 0) - L2_HEADER * packets) };
}

/**
 * A police's drops (act_police.c tcf_police_act): each exceeding packet when the exceed verdict is drop, and
 * with a rate each conforming one when the conform verdict is drop (a police without one returns its conform
 * verdict before counting anything).
 */
function policeDrops(a: PoliceAction | undefined, c: ActCounters): number {
  const over = c.overlimits ?? 0;
  const rated = !!(a?.rate || a?.pktsPerSec);
  return (a?.exceed.kind === 'drop' ? over : 0) + (rated && a?.control.kind === 'drop' ? Math.max(0, c.packets - over) : 0);
}

/**
 * Which of a meter's drops were each filter's: the meter counts every filter bound to its police together,
 * and OVS credits a flow with every packet it matched, metered away or not, so no counter says whose packets
 * the band dropped. Each filter gets the share of the drops its packets are of the meter's (its flows' packets
 * over the meter's packets in): exact when the filter is the one that ever fed the meter, an even spread
 * otherwise (docs/semantics.md, Counters). Whole packets and bytes, the shares summing to the filters' part.
 */
function dropShares(m: MeterStats, metered: readonly number[]): Counted[] {
  const fed = metered.reduce((n, p) => n + p, 0);
  if (!m.packets || !fed) return metered.map(() => ({ packets: 0, bytes: 0 }));
  const part = Math.min(1, fed / m.packets);
  const dropped = meterDropped(m);
  const packets = apportion(Math.round(dropped.packets * part), metered);
  const bytes = apportion(Math.round(dropped.bytes * part), metered);
  return packets.map((p, k) => ({ packets: p, bytes: bytes[k]! }));
}

/** `total` split in proportion to `weights` (not all 0) into whole numbers that sum to it: largest remainders. */
function apportion(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((n, w) => n + w, 0);
  const exact = weights.map((w) => (total * w) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((n, x) => n + x, 0);
  const byRemainder = exact.map((x, k) => ({ k, r: x - out[k]! })).sort((a, b) => b.r - a.r);
  for (const { k } of byRemainder) {
    if (left-- <= 0) break;
    out[k]!++;
  }
  return out;
}

export class VmViews {
  constructor(
    private readonly rec: VmRecord,
    private readonly bridge: string,
    private readonly installer: FlowInstaller,
    private readonly sync: FlowSync,
    private readonly vf: VfState,
    private readonly log: Logger,
    /** What the kernel datapath did with the VM's rules (agent/hwfacts.ts), where hw-offload is on. */
    private readonly hardware?: () => Promise<Map<number, RuleHardware>>,
  ) {}

  /**
   * Per-rule counters: the sum over the rule's flows, bytes as tc counts them;
   * a police action's are its own (policeCounters), the other actions' what reached them (ownActions).
   */
  async stats(installed?: InstalledFlow[]): Promise<Map<number, DumpStats>> {
    return (await this.counters(installed)).rules;
  }

  /**
   * A rule's counters before any packet: installed `now - installedAt` ago and last used then (tcf_t), in_hw on
   * the strength of its form until traffic says otherwise, and an in_hw filter's hardware counters at 0.
   */
  unused(id: number, installedAt: number, now = Date.now()): DumpStats {
    const inHw = !!this.sync.result(id)?.offloaded;
    const s: DumpStats = { ...zeroStats(), installedMs: now - installedAt, lastUsedMs: now - installedAt, inHw, inHwCount: inHw ? 1 : 0 };
    if (inHw) s.hw = { packets: 0, bytes: 0 };
    return s;
  }

  /** Per-rule counters (stats()) and each police action's own by index, bound or not (tc actions get/ls). */
  async counters(installed?: InstalledFlow[]): Promise<{ rules: Map<number, DumpStats>; police: Map<number, ActCounters> }> {
    const flows = installed ?? (await this.installer.dump());
    const out = new Map<number, DumpStats>();
    // Per rule, the packets of the flows that run its actions: what its meter sees.
    const metered = new Map<number, number>();
    const now = Date.now();
    for (const { id, installedAt } of this.rec.rules) out.set(id, this.unused(id, installedAt, now));
    for (const f of flows) {
      const id = cookieRuleId(f.cookie);
      const s = out.get(id);
      // Only the rule's own flows run it. A trap hands packets to the guest, whose software copy of the filter
      // counts those it matches (a TPID trap takes both TPIDs); the guest's kernel adds them (cls_api.c: software
      // counters plus the driver's, tcf_exts_hw_stats_update; nlshim VPF_NL_SWCOPY does the same).
      if (!s || cookieKind(f.cookie) !== FlowKind.RULE || !f.packets) continue;
      metered.set(id, (metered.get(id) ?? 0) + f.packets);
      s.packets += f.packets;
      s.bytes += Math.max(0, f.bytes - L2_HEADER * f.packets);
      s.lastUsedMs = Math.min(s.lastUsedMs, f.idleAgeSec * 1000);
    }
    const hardware = await this.hardwareFacts();
    for (const [id, s] of out) {
      if (!hardware) {
        // No NIC to ask (userspace datapath, hw-offload off): in_hw says the rule's flows are all forms OVS's tc offload takes.
        if (s.inHw) s.hw = { packets: s.packets, bytes: s.bytes };
        continue;
      }
      // A rule is in hardware while none of the datapath flows through it stayed in software; its hardware counters are the tc flows'.
      const h = hardware.get(id);
      if (h?.softwareFlows) {
        s.inHw = false;
        delete s.hw;
      }
      s.inHwCount = s.inHw ? 1 : 0;
      // The OpenFlow counters hold tc's bytes (no L2 header) for packets tc handled: the header was taken off them once too often.
      // (Exact once OVS's revalidator has pushed tc's counters into them; until then it runs ahead by those packets' 14 bytes.)
      if (h) s.bytes += L2_HEADER * Math.min(h.tcPackets, s.packets);
      if (!s.inHw) continue;
      // TCA_STATS_BASIC_HW only for a filter in hardware (a not_in_hw one has none); tc's own counters, already without L2.
      s.hw = { packets: h?.packets ?? 0, bytes: h?.bytes ?? 0 };
      // The total is never below its hardware part: tc prints software = total - hardware, unsigned.
      s.packets = Math.max(s.packets, s.hw.packets);
      s.bytes = Math.max(s.bytes, s.hw.bytes);
    }
    const { byIndex, exceeded } = await this.policeCounters(out, metered);
    for (const { id, rule, actIndex } of this.rec.rules) {
      const s = out.get(id);
      if (s) ownActions(s, rule, actIndex, byIndex, exceeded.get(id));
    }
    return { rules: out, police: byIndex };
  }

  /**
   * Each police action's counters, shared by every filter bound to its index (act_police.c tcf_police_act:
   * every packet reaching it in bstats; an exceeding one in overlimits, and in drops as the exceed verdict is
   * drop). One index is one meter (flowsync.ts meterFor), whose OFPMP_METER_STATS are those totals: packets
   * in, and the drop band's packets; a police of the action API keeps its meter while no filter binds it. A
   * bound filter whose flows do not meter (a police without a rate, a trapped rule) adds its own packets,
   * which all pass the police. Hardware counters: tcf_exts_hw_stats_update gives each action its filter's,
   * so the police's are the sum of its filters'. Also what each metered filter had dropped (dropShares), by
   * rule id and police index, for the actions after the police.
   */
  private async policeCounters(out: Map<number, DumpStats>, metered: ReadonlyMap<number, number>): Promise<{ byIndex: Map<number, ActCounters>; exceeded: Map<number, Map<number, Counted>> }> {
    const bound = new Map<number, Set<number>>();
    const policeOf = new Map<number, PoliceAction>((this.rec.policers ?? []).map((e) => [e.index, e.police]));
    for (const { id, rule, actIndex } of this.rec.rules)
      rule.actions.forEach((a, j) => {
        const index = actIndex?.[j];
        if (a.kind !== 'police' || !index) return;
        (bound.get(index) ?? bound.set(index, new Set()).get(index)!).add(id);
        // A bound filter's police is the index's (agent/policers.ts resolve).
        if (!policeOf.has(index)) policeOf.set(index, a);
      });
    const indexes = new Set([...bound.keys(), ...(this.rec.policers ?? []).map((e) => e.index)]);
    const meterOf = new Map<number, number>();
    for (const i of indexes) {
      const m = this.sync.meterFor(i);
      if (m !== undefined) meterOf.set(i, m);
    }
    const meters = meterOf.size ? await this.meterStats() : undefined;
    const byIndex = new Map<number, ActCounters>();
    const exceeded = new Map<number, Map<number, Counted>>();
    for (const index of indexes) {
      const meter = meterOf.get(index);
      const m = meter === undefined ? undefined : meters?.get(meter);
      const ids = bound.get(index);
      if (!m && !ids) continue;
      const c: ActCounters = m ? meterCounters(m) : { packets: 0, bytes: 0, drops: 0, overlimits: 0 };
      const feeding: number[] = [];
      for (const id of ids ?? []) {
        const s = out.get(id);
        if (!s) continue;
        if (!m || !this.sync.result(id)?.offloaded) {
          c.packets += s.packets;
          c.bytes += s.bytes;
        } else if (metered.get(id)) feeding.push(id);
        if (s.hw) c.hw = { packets: (c.hw?.packets ?? 0) + s.hw.packets, bytes: (c.hw?.bytes ?? 0) + s.hw.bytes };
      }
      if (m) {
        const shares = dropShares(m, feeding.map((id) => metered.get(id)!));
        feeding.forEach((id, k) => (exceeded.get(id) ?? exceeded.set(id, new Map()).get(id)!).set(index, shares[k]!));
      }
      // tc prints software = total - hardware, unsigned.
      if (c.hw) {
        c.packets = Math.max(c.packets, c.hw.packets);
        c.bytes = Math.max(c.bytes, c.hw.bytes);
      }
      c.drops = policeDrops(policeOf.get(index), c);
      byIndex.set(index, c);
    }
    return { byIndex, exceeded };
  }

  /** The bridge's meter counters; undefined when the installer has none or they cannot be read now (police then counts its filters' packets). */
  private async meterStats(): Promise<Map<number, MeterStats> | undefined> {
    try {
      return await this.installer.meterStats?.();
    } catch (e) {
      this.log.warn({ vm: this.rec.name, err: e }, 'meter stats unreadable; police actions count their filters\' packets');
      return undefined;
    }
  }

  /** The datapath's word on this VM's rules; undefined when there is none to ask or it cannot be read now. */
  private async hardwareFacts(): Promise<Map<number, RuleHardware> | undefined> {
    if (!this.hardware) return undefined;
    try {
      return await this.hardware();
    } catch (e) {
      this.log.warn({ vm: this.rec.name, err: e }, 'datapath flows unreadable; in_hw falls back to what the translator offloads');
      return undefined;
    }
  }

  /** IFLA_VF_STATS from the bridge: port counters (VF tx = what the bridge received from it) and the ACL drop flows. */
  async vfStats(): Promise<VfStats[]> {
    const legacy = this.vf.mode === 'legacy';
    const ports = await this.installer.portStats();
    const flows = legacy ? await this.installer.dump() : [];
    const packets = new Map(flows.map((f) => [f.cookie, f.packets]));
    const sum = (cookies: bigint[] | undefined) => BigInt(cookies?.reduce((n, c) => n + (packets.get(c) ?? 0), 0) ?? 0);
    const perVf = legacy ? this.vf.legacy().perVf : [];
    return this.rec.ports.vfs.map((p, n) => {
      const st = ports.get(p.port);
      const drops = perVf.find((v) => v.vf === n);
      return {
        rxPackets: BigInt(st?.txPackets ?? 0),
        txPackets: BigInt(st?.rxPackets ?? 0),
        rxBytes: BigInt(st?.txBytes ?? 0),
        txBytes: BigInt(st?.rxBytes ?? 0),
        broadcast: 0n,
        multicast: 0n,
        rxDropped: sum(drops?.rxDropCookies),
        txDropped: sum(drops?.txDropCookies),
      };
    });
  }

  async rules(): Promise<RuleView[]> {
    const stats = await this.stats();
    return this.rec.rules.map(({ id, rule }) => this.ruleView(id, rule, stats));
  }

  private ruleView(id: number, rule: FlowerRule, stats: Map<number, FilterStats>): RuleView {
    const error = this.sync.result(id)?.error;
    return { id, rule, stats: stats.get(id)!, ...(error ? { notOffloadedReason: error.message } : {}) };
  }

  /** Each rule with the flows OVS holds for it (flows indexed by rule id once: O(rules + flows)), and the flows of no rule. */
  async explain(): Promise<ExplainReport> {
    const installed = await this.installer.dump();
    const stats = await this.stats(installed);
    const byRule = new Map<number, ExplainedFlow[]>();
    const other: ExplainedFlow[] = [];
    const ids = new Set(this.rec.rules.map((e) => e.id));
    for (const f of installed) {
      const id = cookieRuleId(f.cookie);
      if (cookieKind(f.cookie) === FlowKind.DEFAULT || !ids.has(id)) other.push(flowView(f));
      else {
        const list = byRule.get(id);
        if (list) list.push(flowView(f));
        else byRule.set(id, [flowView(f)]);
      }
    }
    return {
      vm: this.rec.name,
      bridge: this.bridge,
      rules: this.rec.rules.map(({ id, rule }) => {
        const { stats: s, notOffloadedReason } = this.ruleView(id, rule, stats);
        return { id, rule, tc: printable(rule), stats: s, ...(notOffloadedReason ? { notOffloadedReason } : {}), flows: byRule.get(id) ?? [] };
      }),
      other,
    };
  }
}

/**
 * A filter's actions' own counters and tcf_t where they are not the filter's (act_api.c: each action counts
 * the packets it runs on, tcf_action_update_bstats, and its own last use). A police's are its index's; the
 * others' are what reaches them (actionReach): the filter's packets less what a police before them dropped
 * of this filter's (its exceeded share, `exceeded` by police index), none after a verdict that ends the list.
 * An action no packet reached was never used (lastuse = install); one that some reached, the filter's last use.
 */
function ownActions(s: DumpStats, rule: FlowerRule, actIndex: readonly number[] | undefined, byIndex: ReadonlyMap<number, ActCounters>, exceeded: ReadonlyMap<number, Counted> | undefined): void {
  const none = { packets: 0, bytes: 0 };
  const reach = actionReach(rule.actions, s, (j) => exceeded?.get(actIndex?.[j] ?? 0) ?? none);
  const actions = rule.actions.map((a, j): ActCounters | undefined => {
    if (a.kind === 'police') return byIndex.get(actIndex?.[j] ?? 0);
    const r = reach[j]!;
    if (r.packets === s.packets && r.bytes === s.bytes) return undefined;
    // The total is never below its hardware part (tc prints software = total - hardware, unsigned).
    const hw = s.hw ? { hw: { packets: Math.min(s.hw.packets, r.packets), bytes: Math.min(s.hw.bytes, r.bytes) } } : {};
    return { packets: r.packets, bytes: r.bytes, drops: s.drops, ...hw };
  });
  if (actions.some((c) => c)) s.actions = actions;
  const unused = { installedMs: s.installedMs, lastUsedMs: s.installedMs };
  const times = rule.actions.map((a, j) => (a.kind !== 'police' && s.packets && !reach[j]!.packets ? unused : undefined));
  if (times.some((t) => t)) s.actionTimes = times;
}

function flowView(f: InstalledFlow): ExplainedFlow {
  return {
    line: textFlowLine(f),
    cookie: `0x${f.cookie.toString(16)}`,
    kind: cookieKindName(f.cookie),
    packets: f.packets,
    bytes: f.bytes,
  };
}

function printable(rule: FlowerRule): string {
  try {
    return printFilter(rule).join(' ');
  } catch {
    return JSON.stringify(rule);
  }
}
