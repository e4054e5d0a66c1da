// A VM's tc filter table as the 6.1 kernel keeps it (cls_api.c, cls_flower.c):
// decoded requests in, rule and chain changes (or the kernel's refusal) and
// dump replies out. Pure: no I/O, no flows; the caller translates, installs
// and persists what changed (agent/flowsync.ts), or rolls it back.
import { Errno, VpfError } from '../rules/errors.js';
import type { Action, Control, FilterStats, FlowerRule } from '../rules/model.js';
import { buildDone, NlmF, Rtm, type NlHeader, type NlMessage } from '../rules/netlink/nlmsg.js';
import { encodeChainReply, encodeFilterDump, encodeFilterHead, tcfT, type ActTimes, type DumpStats, type FilterDumpOptions, type FilterSelector, type TcMessage } from '../rules/netlink/tc.js';
import { TCA_ACT_FLAGS_SKIP_HW, TCA_ACT_FLAGS_SKIP_SW, type ActCounters } from '../rules/netlink/actions.js';
import { encodeActionDump, encodeActionGetReply, type ActionRequest, type DumpedAction } from '../rules/netlink/tcaction.js';
import { checkAction } from '../rules/validate.js';
import type { PoliceAction } from '../rules/model.js';
import { refcnt, type Policer } from './policers.js';
import { portPair } from '../translator/portmap.js';
import type { RuleEntry, VmRecord } from './records.js';
import { RuleTable, undoRules, type RulesUndo } from './ruletable.js';

/** cls_api.c tc_new_tfilter: a filter without a prio is placed as if it had this one (TC_H_MAKE(0x80000000U, 0U))... */
const ALLOC_PRIO = 0x8000;
/** ...and tcf_auto_prio gives it one below the tcf_proto found there, or 0xC000 when there is none. */
const AUTO_PRIO = 0xc000;

/** What a rolled-back edit puts back: the record's rule state before it. */
export type Snapshot = { rules: VmRecord['rules']; chains: VmRecord['chains']; policers: VmRecord['policers']; nextRuleId: number };

type ChainMsg = Extract<TcMessage, { type: 'chain' }>;
type QdiscMsg = Extract<TcMessage, { type: 'qdisc' }>;
type ActionMsg = Extract<ActionRequest, { op: 'new' | 'del' | 'flush' }>;

export function zeroStats(): FilterStats {
  return { packets: 0, bytes: 0, lastUsedMs: 0, installedMs: 0, drops: 0, inHw: false, inHwCount: 0 };
}

/** Packets and bytes (as tc counts them) of some traffic. */
export type Counted = { packets: number; bytes: number };

const NONE: Counted = { packets: 0, bytes: 0 };

/**
 * What of a filter's traffic each of its actions runs on, as act_api.c tcf_action_exec walks them: all of it
 * reaches the first; pipe hands it to the next; jump N restarts the walk skipping N actions, so goes on at
 * action N (counted only forward: a backward jump loops until jmp_ttl ends it); any other verdict ends the
 * list. A police splits it (act_police.c tcf_police_act): `exceeded(j, reaching)` of what reaches police j
 * takes the exceed verdict, the rest the conform one.
 */
export function actionReach(actions: readonly Action[], all: Counted, exceeded: (j: number, reaching: Counted) => Counted = () => NONE): Counted[] {
  const reach = actions.map((_, j) => (j ? { packets: 0, bytes: 0 } : { packets: all.packets, bytes: all.bytes }));
  const onward = (j: number, c: Control, part: Counted) => {
    const next = c.kind === 'pipe' ? j + 1 : c.kind === 'jump' ? c.count : -1;
    const to = next > j ? reach[next] : undefined;
    if (!to) return;
    to.packets += part.packets;
    to.bytes += part.bytes;
  };
  actions.forEach((a, j) => {
    const r = reach[j]!;
    if (a.kind !== 'police') return onward(j, a.control, r);
    const e = exceeded(j, r);
    const over = { packets: Math.min(e.packets, r.packets), bytes: Math.min(e.bytes, r.bytes) };
    onward(j, a.exceed, over);
    onward(j, a.control, { packets: r.packets - over.packets, bytes: r.bytes - over.bytes });
  });
  return reach;
}

/** rtnetlink_rcv_msg: a GET with either NLM_F_DUMP bit is a dump. */
export function isDump(msg: NlMessage): boolean {
  return (msg.flags & NlmF.DUMP) !== 0;
}

/** The reply header of a request: the kernel addresses every reply to the requester (answer() stamps the port id). */
function replyHdr(msg: NlMessage, type: number, flags: number): NlHeader {
  return { type, flags, seq: msg.seq, pid: msg.pid };
}

export class FilterTable {
  /** rec.rules indexed for edits; built on first use and dropped only by rollback() and clear(). */
  private index: RuleTable | undefined;
  /** The latest snapshot, and what each sync() since it changed in rec.rules (in place), for rollback(). */
  private last: Snapshot | undefined;
  private undo: RulesUndo[] = [];

  constructor(
    private readonly rec: VmRecord,
    private readonly rulesPerVm: number,
  ) {}

  get table(): RuleTable {
    return (this.index ??= new RuleTable(this.rec.rules, this.rec.chains ?? [], this.rec.policers ?? []));
  }

  snapshot(): Snapshot {
    this.undo = [];
    return (this.last = { rules: this.rec.rules, chains: this.rec.chains, policers: this.rec.policers, nextRuleId: this.rec.nextRuleId });
  }

  /**
   * Back to the latest snapshot (or to a given state, as clear() does): sync() changed
   * rec.rules in place, so its undo records put the array back; the index is rebuilt.
   */
  rollback(s: Snapshot): void {
    if (s === this.last && s.rules === this.rec.rules) for (const u of this.undo.reverse()) undoRules(s.rules, u);
    this.undo = [];
    this.last = undefined;
    this.rec.rules = s.rules;
    this.rec.chains = s.chains;
    this.rec.policers = s.policers;
    this.rec.nextRuleId = s.nextRuleId;
    this.index = undefined;
  }

  /** mlx5 leaving switchdev: every block, filter and chain goes. */
  clear(): void {
    this.rollback({ rules: [], chains: [], policers: [], nextRuleId: this.rec.nextRuleId });
  }

  /** The record after edits of the index (rules in install order, changed in place; chains in creation order). */
  sync(): void {
    const u = this.table.syncTo(this.rec.rules);
    // Kept only while a snapshot may be rolled back to; without one (a test's bare sync) nothing can use it.
    if (this.last) this.undo.push(u);
    this.rec.chains = this.table.chainList();
    this.rec.policers = this.table.police.entries();
  }

  /** A filter add/replace/change or delete (cls_api.c's checks, in its order); throws the kernel's refusal, having changed nothing. */
  filterChange(m: TcMessage, flags: number): void {
    if (m.type === 'filter' && m.op === 'new') this.addRule(m.rule, flags);
    else if (m.type === 'filter' && m.op === 'del') this.deleteFilters(m.sel);
    else throw new Error('not a filter change');
  }

  /** A qdisc request: true when it deletes clsact, whose two blocks then go with their filters and chains (dropBlocks). */
  qdisc(m: QdiscMsg): boolean {
    if (m.kind && m.kind !== 'clsact' && m.kind !== 'ingress') throw new VpfError(Errno.EOPNOTSUPP, `qdisc ${m.kind} cannot be offloaded on a representor`);
    this.checkDev(m.dev);
    return m.op === 'del';
  }

  /** Deleting a representor's clsact: both of its blocks go, with their filters and chains. */
  dropBlocks(dev: string): void {
    const table = this.table;
    this.deleteWhere((r) => r.dev === dev);
    for (const c of table.chainList()) if (c.dev === dev) table.setExplicit(c, c.chain, false);
  }

  /** tc_ctl_chain for RTM_NEWCHAIN / RTM_DELCHAIN: the checks, then the edit (a delete flushes the chain, then drops `tc chain add`'s reference). */
  chainChange(m: ChainMsg, flags: number): void {
    this.checkDev(m.dev);
    const block = { dev: m.dev, direction: m.direction };
    const chain = m.chain ?? 0;
    const state = this.table.chainState(block, chain);
    if (m.op === 'new') {
      if (state === 'shown') throw new VpfError(Errno.EEXIST, 'Filter chain already exists');
      if (state === 'none' && !(flags & NlmF.CREATE)) throw new VpfError(Errno.ENOENT, 'Need both RTM_NEWCHAIN and NLM_F_CREATE to create a new chain');
      this.table.setExplicit(block, chain, true);
      return;
    }
    if (state !== 'shown') throw new VpfError(Errno.EINVAL, 'Cannot find specified filter chain');
    this.deleteWhere((r) => r.dev === m.dev && r.direction === m.direction && r.chain === chain);
    this.table.setExplicit(block, chain, false);
  }

  /** tc_dump_chain, and RTM_GETCHAIN answered as tc_chain_notify(unicast) fills it (the request's type and flags). */
  chainGet(msg: NlMessage, m: ChainMsg): Buffer[] {
    const block = { dev: m.dev, direction: m.direction };
    if (isDump(msg)) {
      if (!m.dev || msg.payload.readUInt32LE(12) === 0) return [buildDone(msg.seq)];
      const hdr = replyHdr(msg, Rtm.NEWCHAIN, NlmF.MULTI);
      const shown = this.table.shownChains(block).filter((c) => m.chain === undefined || c === m.chain);
      return [...shown.map((chain) => encodeChainReply({ ...block, chain }, hdr)), buildDone(msg.seq)];
    }
    this.checkDev(m.dev);
    const chain = m.chain ?? 0;
    if (this.table.chainState(block, chain) !== 'shown') throw new VpfError(Errno.EINVAL, 'Cannot find specified filter chain');
    return [encodeChainReply({ ...block, chain }, replyHdr(msg, Rtm.GETCHAIN, msg.flags))];
  }

  /** Whether a filter dump of `sel` lists anything at all (no device, or parent 0, the root qdisc, which holds no block: empty). */
  dumpable(msg: NlMessage, sel: FilterSelector): boolean {
    return !!sel.dev && msg.payload.readUInt32LE(12) !== 0;
  }

  /** tc_dump_tfilter: one block's chains in creation order, each tcf_proto (prio ascending) as its bare entry then its filters by handle. */
  dump(msg: NlMessage, sel: FilterSelector, stats: ReadonlyMap<number, DumpStats>): Buffer[] {
    if (!this.dumpable(msg, sel)) return [buildDone(msg.seq)];
    const table = this.table;
    const hdr = replyHdr(msg, Rtm.NEWTFILTER, NlmF.MULTI);
    const out: Buffer[] = [];
    let used: ReadonlyMap<number, number> | undefined;
    for (const chain of table.shownChains(sel)) {
      if (sel.chain !== undefined && sel.chain !== chain) continue;
      for (const tp of table.protos(sel, chain)) {
        // tcf_chain_dump filters by tcm_info (prio, protocol) only: the handle and kind of the request are ignored.
        if ((sel.prio && sel.prio !== tp.prio) || (sel.protocol && sel.protocol !== tp.protocol)) continue;
        out.push(encodeFilterHead({ dev: sel.dev, direction: sel.direction, chain, prio: tp.prio, protocol: tp.protocol }, hdr));
        for (const e of tp.rules) out.push(encodeFilterDump(e.rule, this.withPoliceTimes(e, stats, (used ??= this.policeUse(stats))), hdr, undefined, this.dumpOpts(e)));
      }
    }
    out.push(buildDone(msg.seq));
    return out;
  }

  /** tc_get_tfilter's lookup: the filter a get names, or the kernel's refusal. */
  find(sel: FilterSelector): RuleEntry {
    if (!sel.prio) throw new VpfError(Errno.ENOENT, 'Invalid filter command with priority of zero');
    this.checkDev(sel.dev);
    const chain = sel.chain ?? 0;
    if (this.table.chainState(sel, chain) === 'none') throw new VpfError(Errno.EINVAL, 'Cannot find specified filter chain');
    const e = this.findProto(sel, chain).byHandle(sel.handle);
    if (!e) throw new VpfError(Errno.ENOENT, 'Specified filter handle not found');
    return e;
  }

  /** tc_get_tfilter's answer: the filter with the request's flags, as tfilter_notify(unicast) fills it. */
  encodeGot(msg: NlMessage, e: RuleEntry, stats: DumpStats | undefined, all: ReadonlyMap<number, DumpStats> = new Map(stats ? [[e.id, stats]] : [])): Buffer[] {
    // A police's last use is over every filter bound to it: `all` holds theirs (without it, this filter's only).
    return [encodeFilterDump(e.rule, this.withPoliceTimes(e, all, this.policeUse(all)), replyHdr(msg, Rtm.NEWTFILTER, msg.flags), undefined, this.dumpOpts(e))];
  }

  /** A filter's stats with each police action's own tcf_t (policeTimes): the police's, not the filter's. */
  private withPoliceTimes(e: RuleEntry, stats: ReadonlyMap<number, DumpStats>, used: ReadonlyMap<number, number>): DumpStats {
    const f: DumpStats = stats.get(e.id) ?? zeroStats();
    if (!e.rule.actions.some((a) => a.kind === 'police')) return f;
    const now = Date.now();
    const actionTimes = e.rule.actions.map((a, j) => {
      const p = a.kind === 'police' ? this.table.police.get(e.actIndex?.[j] ?? 0) : undefined;
      return p ? policeTimes(p, used, now) : f.actionTimes?.[j];
    });
    return { ...f, actionTimes };
  }

  /**
   * When each police index was last used, ms ago (act_police.c tcf_lastuse_update on each packet it runs on):
   * the newest last use among the filters bound to it whose packets reach it. One pass over the filters.
   */
  private policeUse(stats: ReadonlyMap<number, DumpStats>): Map<number, number> {
    const used = new Map<number, number>();
    for (const e of this.rec.rules) {
      const f = stats.get(e.id);
      if (!f?.packets || !e.rule.actions.some((a) => a.kind === 'police')) continue;
      const reach = actionReach(e.rule.actions, f);
      e.rule.actions.forEach((a, j) => {
        const index = e.actIndex?.[j];
        if (a.kind === 'police' && index && reach[j]!.packets) used.set(index, Math.min(used.get(index) ?? Infinity, f.lastUsedMs));
      });
    }
    return used;
  }

  /** A filter's actions as its dump shows them: their indexes, and a shared police's bind and ref counts (tcf_police_dump). */
  private dumpOpts(e: RuleEntry): FilterDumpOptions {
    if (!e.rule.actions.some((a) => a.kind === 'police')) return { actionIndex: e.actIndex };
    const police = (j: number) => (e.rule.actions[j]?.kind === 'police' ? this.table.police.get(e.actIndex?.[j] ?? 0) : undefined);
    const idx = e.actIndex ?? [];
    return { actionIndex: idx, actionBind: idx.map((_, j) => police(j)?.binds ?? 1), actionRef: idx.map((_, j) => { const p = police(j); return p ? refcnt(p) : 1; }) };
  }

  /**
   * The action API's changes (act_api.c tcf_action_add, tca_action_gd with
   * RTM_DELACTION, tca_action_flush), for police actions: throws the kernel's
   * refusal having changed nothing; a replaced police reaches the filters
   * bound to it. Returns the warning a partial flush ACKs with.
   */
  actionChange(m: ActionMsg): string | undefined {
    const table = this.table;
    if (m.op === 'new') {
      m.actions.forEach((a, i) => {
        shareable(a.kind);
        checkAction(a, i);
      });
      for (const index of table.police.add(m.actions as PoliceAction[], m.replace, Date.now())) table.policeChanged(index);
      return undefined;
    }
    if (m.op === 'flush') {
      shareable(m.kind);
      return table.police.flush().warning;
    }
    for (const r of m.refs) shareable(r.kind);
    table.police.delete(m.refs.map((r) => r.index));
    return undefined;
  }

  /** tcf_get_notify's answer to RTM_GETACTION: the police actions named, as tcf_police_dump fills them. */
  actionGet(msg: NlMessage, m: Extract<ActionRequest, { op: 'get' }>, stats: ReadonlyMap<number, DumpStats>, police: ReadonlyMap<number, ActCounters>): Buffer[] {
    for (const r of m.refs) shareable(r.kind);
    const ps = m.refs.map((r) => this.table.police.check(r.index));
    const used = this.policeUse(stats);
    return [encodeActionGetReply({ seq: msg.seq, pid: msg.pid }, ps.map((p) => this.dumped(p, stats, police, used)))];
  }

  /** tc_dump_action for police: every police action in index order (a kind vpf does not share: nothing, as an unknown kind). */
  actionDump(msg: NlMessage, m: Extract<ActionRequest, { op: 'dump' }>, stats: ReadonlyMap<number, DumpStats>, police: ReadonlyMap<number, ActCounters>): Buffer[] {
    const list = m.kind === 'police' ? this.table.police.list() : [];
    const now = Date.now();
    // TCA_ROOT_TIME_DELTA: only actions used within the last N ms.
    const used = this.policeUse(stats);
    const shown = m.sinceMs ? list.filter((p) => this.dumped(p, stats, police, used, now).usedAgoMs <= m.sinceMs!) : list;
    return [...encodeActionDump({ seq: msg.seq, pid: msg.pid }, shown.map((p) => this.dumped(p, stats, police, used, now)), m.flags), buildDone(msg.seq)];
  }

  /**
   * A police action's counters: its own (views.ts, from its meter, bound or not);
   * without them the sum of the filters bound to it (police is their first action, so every packet they match passes it).
   */
  private dumped(p: Policer, stats: ReadonlyMap<number, DumpStats>, police: ReadonlyMap<number, ActCounters>, used: ReadonlyMap<number, number>, now = Date.now()): DumpedAction & { usedAgoMs: number } {
    const s = { packets: 0, bytes: 0 };
    let hw: { packets: number; bytes: number } | undefined;
    let own: DumpedAction['counters'] | undefined;
    for (const { e, at } of this.table.boundTo(p.index)) {
      const f = stats.get(e.id);
      if (!f) continue;
      own ??= f.actions?.[at[0]!];
      s.packets += f.packets;
      s.bytes += f.bytes;
      if (f.hw) hw = { packets: (hw?.packets ?? 0) + f.hw.packets, bytes: (hw?.bytes ?? 0) + f.hw.bytes };
    }
    own ??= police.get(p.index);
    const times = policeTimes(p, used, now);
    const actFlags = (p.skip?.hw ? TCA_ACT_FLAGS_SKIP_HW : 0) | (p.skip?.sw ? TCA_ACT_FLAGS_SKIP_SW : 0);
    return {
      action: p.police,
      index: p.index,
      ref: refcnt(p),
      bind: p.binds,
      counters: own ?? { bytes: s.bytes, packets: s.packets, drops: 0, ...(hw ? { hw } : {}) },
      tm: tcfT(times),
      // The action API hands a police to the NIC on its own (tcf_action_offload_add); a filter's rides with the filter.
      inHwCount: p.explicit ? 1 : 0,
      ...(actFlags ? { actFlags } : {}),
      usedAgoMs: times.lastUsedMs,
    };
  }

  /** A netdev the request names by ifindex: one this VM lacks is a bare ENODEV (__tcf_qdisc_find, tc_modify_qdisc, act_mirred's dev_get_by_index). */
  private checkDev(dev: string): void {
    if (!portPair(this.rec.ports, dev)) throw new VpfError(Errno.ENODEV, '');
  }

  /** cls_api.c tc_new_tfilter, its checks in its order, then fl_change: a new filter, or the one at that handle changed. */
  private addRule(rule: FlowerRule, flags: number): void {
    this.checkDev(rule.dev);
    for (const a of rule.actions) if (a.kind === 'mirred') this.checkDev(a.dev);
    const table = this.table;
    const create = (flags & NlmF.CREATE) !== 0;
    const allocate = !rule.prio;
    if (allocate && !create) throw new VpfError(Errno.ENOENT, 'Invalid filter command with priority of zero');
    // tcf_chain_tp_find: an allocated prio looks at 0x8000 (which must be free); a given one must hold the same protocol.
    const tp = table.atPrio({ ...rule, prio: allocate ? ALLOC_PRIO : rule.prio })[0];
    if (tp && (allocate || (rule.protocol && tp.rule.protocol !== rule.protocol))) throw new VpfError(Errno.EINVAL, 'Filter with specified priority/protocol not found');
    if (!tp) {
      if (!rule.protocol) throw new VpfError(Errno.EINVAL, 'Filter kind and protocol must be specified');
      if (!create) throw new VpfError(Errno.ENOENT, 'Need both RTM_NEWTFILTER and NLM_F_CREATE to create a new filter');
      if (allocate) {
        const above = table.prios(rule).filter((p) => p > ALLOC_PRIO);
        rule.prio = above.length ? Math.min(...above) - 1 : AUTO_PRIO;
      }
    }
    const existing = rule.handle ? table.byHandle(rule, rule.handle) : undefined;
    if (!existing && !create) throw new VpfError(Errno.ENOENT, 'Need both RTM_NEWTFILTER and NLM_F_CREATE to create a new filter');
    if (existing && flags & NlmF.EXCL) throw new VpfError(Errno.EEXIST, 'Filter already exists');
    if (existing) {
      // The new actions are allocated while the old filter still holds its own (fl_change, then the old one is freed).
      table.replace(existing, { id: existing.id, rule, installedAt: Date.now(), actIndex: table.allocActions(rule) });
      return;
    }
    // fl_ht_insert_unique: the key its mask already holds in this tcf_proto is a bare EEXIST (before any handle or action index is taken).
    if (tp && table.holdsKey(rule)) throw new VpfError(Errno.EEXIST, '');
    if (table.size >= this.rulesPerVm) throw new VpfError(Errno.ENOSPC, `this VM already has ${this.rulesPerVm} filters (its quota)`);
    if (!rule.handle) rule.handle = table.freeHandle(rule);
    table.push({ id: this.rec.nextRuleId++, rule, installedAt: Date.now(), actIndex: table.allocActions(rule) });
  }

  /** cls_api.c tc_del_tfilter: a flush of a chain (prio 0), a whole tcf_proto (handle 0), or one filter. */
  private deleteFilters(sel: FilterSelector): void {
    if (!sel.prio && (sel.protocol || sel.handle || sel.kind !== undefined)) throw new VpfError(Errno.ENOENT, 'Cannot flush filters with protocol, handle or kind set');
    this.checkDev(sel.dev);
    const table = this.table;
    // Without TCA_CHAIN the request names chain 0, as every tc command does.
    const chain = sel.chain ?? 0;
    if (table.chainState(sel, chain) === 'none') {
      // "User requested flush on non-existent chain. Nothing to do."
      if (!sel.prio) return;
      throw new VpfError(Errno.ENOENT, 'Cannot find specified filter chain');
    }
    if (!sel.prio) {
      this.deleteWhere((r) => r.dev === sel.dev && r.direction === sel.direction && r.chain === chain);
      return;
    }
    const tp = this.findProto(sel, chain);
    if (!sel.handle) {
      for (const e of tp.rules.slice()) table.remove(e);
      return;
    }
    const e = tp.byHandle(sel.handle);
    if (!e) throw new VpfError(Errno.ENOENT, 'Specified filter handle not found');
    table.remove(e);
  }

  /** tcf_chain_tp_find for a delete or get: the tcf_proto at the selector's prio, checked against its protocol and kind. */
  private findProto(sel: FilterSelector, chain: number): { rules: readonly RuleEntry[]; byHandle(h: number): RuleEntry | undefined } {
    const table = this.table;
    const at = { dev: sel.dev, direction: sel.direction, chain, prio: sel.prio };
    const rules = table.atPrio(at);
    if (!rules.length) throw new VpfError(Errno.ENOENT, 'Filter with specified priority/protocol not found');
    if (sel.protocol && rules[0]!.rule.protocol !== sel.protocol) throw new VpfError(Errno.EINVAL, 'Filter with specified priority/protocol not found');
    if (sel.kind !== undefined && sel.kind !== 'flower') throw new VpfError(Errno.EINVAL, 'Specified filter kind does not match existing one');
    return { rules, byHandle: (h) => (h ? table.byHandle(at, h) : undefined) };
  }

  private deleteWhere(pred: (r: FlowerRule) => boolean): void {
    const table = this.table;
    for (const e of table.toArray().filter(({ rule }) => pred(rule))) table.remove(e);
  }
}

/**
 * A police action's tcf_t (act_police.c tcf_police_dump -> tcf_tm_dump): installed when the action was created
 * (tcf_idr_create: by the action API, or by the filter that first named its index), last used as `used` says
 * (policeUse), the install until then. firstuse stays 0: no flow counter says when a first packet came.
 */
function policeTimes(p: Policer, used: ReadonlyMap<number, number>, now: number): ActTimes {
  const installedMs = now - p.installedAt;
  return { installedMs, lastUsedMs: Math.min(installedMs, used.get(p.index) ?? installedMs) };
}

/** vpf shares police actions only (OVS's meters); the other kinds' action API is refused with the reason. */
function shareable(kind: string): void {
  if (kind !== 'police') throw new VpfError(Errno.EOPNOTSUPP, `shared ${kind} actions are not supported: vpf shares police actions only (tc actions ... action police)`, 'TCA_ACT_KIND');
}
