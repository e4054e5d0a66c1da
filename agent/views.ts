// What a VM's state looks like from outside, read-only: per-rule counters as
// tc reports them, VF counters as ip reports them, and explain (each rule
// beside the flows OVS holds for it). Computed on demand from the installed
// flows; nothing here changes state. The admin API serves these shapes.
import type { Logger } from 'pino';
import type { FilterStats, FlowerRule } from '../rules/model.js';
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
import { zeroStats } from './filters.js';

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
  const dropped = m.bands.reduce((n, b) => n + b.packets, 0);
  return { packets: m.packets, bytes: Math.max(0, m.bytes - L2_HEADER * m.packets), drops: dropped, overlimits: dropped };
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
   * a police action's are its own (policeCounters), the other actions' the filter's.
   */
  async stats(installed?: InstalledFlow[]): Promise<Map<number, DumpStats>> {
    return (await this.counters(installed)).rules;
  }

  /** Per-rule counters (stats()) and each police action's own by index, bound or not (tc actions get/ls). */
  async counters(installed?: InstalledFlow[]): Promise<{ rules: Map<number, DumpStats>; police: Map<number, ActCounters> }> {
    const flows = installed ?? (await this.installer.dump());
    const out = new Map<number, DumpStats>();
    const now = Date.now();
    for (const { id, installedAt } of this.rec.rules) {
      const r = this.sync.result(id);
      out.set(id, { ...zeroStats(), installedMs: now - installedAt, lastUsedMs: now - installedAt, inHw: !!r?.offloaded, inHwCount: r?.offloaded ? 1 : 0 });
    }
    for (const f of flows) {
      const s = out.get(cookieRuleId(f.cookie));
      if (!s || cookieKind(f.cookie) === FlowKind.DEFAULT || !f.packets) continue;
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
      if (h?.softwareFlows) s.inHw = false;
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
    return { rules: out, police: await this.policeCounters(out) };
  }

  /**
   * Each police action's counters, shared by every filter bound to its index (act_police.c tcf_police_act:
   * every packet reaching it in bstats; an exceeding one in overlimits, and in drops as the exceed verdict is
   * drop). One index is one meter (flowsync.ts meterFor), whose OFPMP_METER_STATS are those totals: packets
   * in, and the drop band's packets; a police of the action API keeps its meter while no filter binds it. A
   * bound filter whose flows do not meter (a police without a rate, a trapped rule) adds its own packets,
   * which all pass the police. Hardware counters: tcf_exts_hw_stats_update gives each action its filter's,
   * so the police's are the sum of its filters'.
   */
  private async policeCounters(out: Map<number, DumpStats>): Promise<Map<number, ActCounters>> {
    const bound = new Map<number, Set<number>>();
    for (const { id, rule, actIndex } of this.rec.rules)
      rule.actions.forEach((a, j) => {
        const index = actIndex?.[j];
        if (a.kind === 'police' && index) (bound.get(index) ?? bound.set(index, new Set()).get(index)!).add(id);
      });
    const indexes = new Set([...bound.keys(), ...(this.rec.policers ?? []).map((e) => e.index)]);
    const meterOf = new Map<number, number>();
    for (const i of indexes) {
      const m = this.sync.meterFor(i);
      if (m !== undefined) meterOf.set(i, m);
    }
    const meters = meterOf.size ? await this.meterStats() : undefined;
    const byIndex = new Map<number, ActCounters>();
    for (const index of indexes) {
      const meter = meterOf.get(index);
      const m = meter === undefined ? undefined : meters?.get(meter);
      const ids = bound.get(index);
      if (!m && !ids) continue;
      const c: ActCounters = m ? meterCounters(m) : { packets: 0, bytes: 0, drops: 0, overlimits: 0 };
      for (const id of ids ?? []) {
        const s = out.get(id);
        if (!s) continue;
        if (!m || !this.sync.result(id)?.offloaded) {
          c.packets += s.packets;
          c.bytes += s.bytes;
        }
        if (s.hw) c.hw = { packets: (c.hw?.packets ?? 0) + s.hw.packets, bytes: (c.hw?.bytes ?? 0) + s.hw.bytes };
      }
      // tc prints software = total - hardware, unsigned.
      if (c.hw) {
        c.packets = Math.max(c.packets, c.hw.packets);
        c.bytes = Math.max(c.bytes, c.hw.bytes);
      }
      byIndex.set(index, c);
    }
    for (const { id, rule, actIndex } of this.rec.rules) {
      const s = out.get(id);
      if (!s || !rule.actions.some((a) => a.kind === 'police')) continue;
      s.actions = rule.actions.map((a, j) => (a.kind === 'police' ? byIndex.get(actIndex?.[j] ?? 0) : undefined));
    }
    return byIndex;
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
