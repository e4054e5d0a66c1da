// rules + port map -> the OpenFlow flows of the VM's bridge. Pure: no I/O.
//
// Layout (docs/mapping.md):
//   table 0           entry: representor backend -> its VF/wire untouched;
//                     VF/wire -> first table of chain 0 (or the slow path).
//   tables 1..253     an entry table per chain (goto chain N lands there) and
//                     one per (chain, prio) in use, ids stable across calls.
//                     A rule's flows sit at a priority that encodes its place
//                     in the kernel's mask order; the lowest flow of a table
//                     resubmits to the next prio of the chain, and the last
//                     one of a chain sends the packet to its representor.
// A rule that cannot be offloaded keeps its place with trap flows (slow path)
// over its match, as exactly as OpenFlow says it, so no lower flow can catch
// its packets and every other packet stays offloaded; with skip_sw it is
// refused instead, as a NIC refuses it. skip_hw rules are trapped (C5).
import { Errno, VpfError } from '../rules/errors.js';
import { refusal } from './refuse.js';
import { EthP, type FlowerRule } from '../rules/model.js';
import { l3Protocol } from '../rules/validate.js';
import { maskShape } from '../rules/classify/match.js';
import type { Match, MatchField, OfAction, OfFlow, OfMeter } from '../ovs/openflow/flow.js';
import { EMIT_TABLE, handOffAction, HANDOFF_TABLE, impliedIpProto, output, PENDING_RULE_MASK, resubmit, RESTORE_SLOT_REG, setField, translateActions, VALUE_BITS_REG, type Saved } from './actions.js';
import { cookieOf, FlowKind } from './cookie.js';
import { guestZones } from '../rules/ctzone.js';
import { deeperTags, ipv6LaterFragments, mf, multiTagged, ruleView, translateMatch, trapMatches, UNTAGGED } from './match.js';
import { portPair, repNames, type PortMap } from './portmap.js';
import { vfRateMeter } from './legacy.js';
import { rulesOnLoops } from './loops.js';
import { UPLINK, vfIndex } from '../rules/ports.js';

export interface RuleInput {
  /** The daemon's id for the rule (28 bits, stable while the rule exists): it goes into the cookie. */
  id: number;
  rule: FlowerRule;
}

export interface TranslateInput {
  rules: RuleInput[];
  ports: PortMap;
  /** Guest ct zone -> host ct zone for this VM (VMs must never share conntrack state). Default: identity. */
  zone?: (guestZone: number) => number;
  maxFlowsPerRule?: number;
  /** The VM's declared outer TPID (0x8100/0x88a8), when it has one that still holds (docs/mapping.md, VLAN matches). */
  outerTpid?: number;
  /** The previous translation's `tables`: kept ids make single-rule changes touch few flows. */
  layout?: Map<string, number>;
  /**
   * Per-rule results of earlier calls, owned by the caller and valid for one
   * (ports, zone, maxFlowsPerRule, outerTpid): an unchanged rule object at the same table
   * and rank reuses its flows, so translating N rules after one change costs
   * little more than a lookup each. The output is the same with or without it.
   */
  memo?: TranslateMemo;
  /**
   * Rules the caller knows cannot be offloaded, with the reason: Open vSwitch
   * refused one of their flows. They are translated as any rule that cannot be
   * (a trap, or refused under skip_sw), and never kept in or taken from the memo.
   */
  notOffloadable?: ReadonlyMap<number, VpfError>;
  /** Per VF, max_tx_rate in Mbps (0 = none): policed by a meter on everything the VF sends, as in legacy mode. */
  vfMaxTxRate?: number[];
  /**
   * The meter id of a police action (by its meter key), when the caller keeps
   * them stable across translations (agent/meterids.ts); else meters are
   * numbered from 1 in translation order.
   */
  meterId?: (key: string) => number;
}

interface RuleMemo {
  shape?: string;
  /** "chain/prio" and "dev|chain/prio" of the rule (a rule object never changes). */
  tableKey?: string;
  groupKey?: string;
  /** Table, rank and id the flows were made for; absent when they depend on other rules (goto, police). */
  sig?: { table: number; rank: number; id: number };
  flows?: OfFlow[];
  result?: RuleResult;
}
export type TranslateMemo = WeakMap<FlowerRule, RuleMemo>;

export interface RuleResult {
  offloaded: boolean;
  flows: number;
  /** Why the rule is not offloaded (a trap flow keeps its place) or was refused (skip_sw). */
  error?: VpfError;
  refused?: boolean;
}

export interface Translation {
  flows: OfFlow[];
  meters: OfMeter[];
  perRule: Map<number, RuleResult>;
  /** "chain/prio" and "chain/entry" -> table: for explain, and as the next call's `layout`. */
  tables: Map<string, number>;
  /** Some rule's goto lies on a loop of chains (translator/loops.ts): whether it still does depends on every rule. */
  loops?: true;
  /** Some rule may defer mirror copies: every rule of a later chain has a flow for them, so any edit needs the whole set. */
  pendingMirrors?: true;
}

export const ENTRY_TABLE = 0;
const MAX_TABLE = EMIT_TABLE - 1;
const TOP = 60000;
export const DEFAULT_MAX_FLOWS_PER_RULE = 256;

function flow(kind: number, id: number, table: number, priority: number, match: Match, actions: OfAction[]): OfFlow {
  return { table, priority, cookie: cookieOf(kind, id, table, priority, match, actions), match, actions };
}
const inPortIs = (port: number): MatchField => mf('in_port', port);
const NONE: MatchField[] = [];
/** [port, ...m, ...when] in one exact-size array (a flow's match; spreads grew theirs step by step). */
function withPort(port: MatchField, m: MatchField[], when: MatchField[]): Match {
  const out = new Array<MatchField>(1 + m.length + when.length);
  out[0] = port;
  for (let i = 0; i < m.length; i++) out[1 + i] = m[i]!;
  for (let i = 0; i < when.length; i++) out[1 + m.length + i] = when[i]!;
  return out;
}
const DROP: OfAction[] = [];

export function translate(input: TranslateInput): Translation {
  const { ports } = input;
  const zone = input.zone ?? ((z: number) => z);
  const maxFlowsPerRule = input.maxFlowsPerRule ?? DEFAULT_MAX_FLOWS_PER_RULE;
  const flows: OfFlow[] = [];
  const meters: OfMeter[] = [];
  const perRule = new Map<number, RuleResult>();

  // Rules that can never run here are refused up front, whatever their flags.
  const live: RuleInput[] = [];
  for (const r of input.rules) {
    if (r.rule.direction !== 'ingress') {
      perRule.set(r.id, { offloaded: false, flows: 0, refused: true, error: refusal(Errno.EOPNOTSUPP, 'egress filters on a representor cannot be offloaded', 'egress') });
    } else if (!portPair(ports, r.rule.dev)) {
      perRule.set(r.id, { offloaded: false, flows: 0, refused: true, error: refusal(Errno.ENODEV, `this VM has no representor ${r.rule.dev}`, 'dev') });
    } else live.push(r);
  }

  // Tables: an entry table per chain and one per (chain, prio) in use. Ids
  // that the previous layout gave stay put, so adding a prio rewrites only the
  // flows that point at its neighbours, never renumbers the rest.
  const key = (c: number, p: number) => `${c}/${p}`;
  const entryKey = (c: number) => `${c}/entry`;
  const byChain = new Map<number, Set<number>>();
  for (const { rule } of live) {
    const s = byChain.get(rule.chain) ?? new Set<number>();
    s.add(rule.prio);
    byChain.set(rule.chain, s);
  }
  const wanted: string[] = [];
  const chains = [...byChain.keys()].sort((a, b) => a - b);
  const prios = new Map(chains.map((c) => [c, [...byChain.get(c)!].sort((a, b) => a - b)]));
  for (const c of chains) {
    wanted.push(entryKey(c));
    for (const p of prios.get(c)!) wanted.push(key(c, p));
  }
  const tables = new Map<string, number>();
  const used = new Set<number>();
  for (const k of wanted) {
    const t = input.layout?.get(k);
    if (t !== undefined && !used.has(t)) {
      tables.set(k, t);
      used.add(t);
    }
  }
  let free = 1;
  for (const k of wanted) {
    if (tables.has(k)) continue;
    while (used.has(free)) free++;
    if (free > MAX_TABLE) throw refusal(Errno.ENOSPC, `more than ${MAX_TABLE} chains and (chain, prio) pairs in one VM`, 'prio');
    tables.set(k, free);
    used.add(free);
  }
  const chainTable = (c: number) => tables.get(entryKey(c));
  // The table after (chain, prio): where its misses go, and a continue (undefined: the chain ends there).
  const nextTables = new Map<string, number>();
  for (const [c, ps] of prios) ps.forEach((p, i) => i + 1 < ps.length && nextTables.set(key(c, p), tables.get(key(c, ps[i + 1]!))!));
  const nextTable = (c: number, p: number) => nextTables.get(key(c, p));

  // Table 0: what the guest sends on a representor leaves by its VF/wire untouched; what arrives from a VF/wire is classified.
  const vfMeters: OfMeter[] = [];
  for (const dev of repNames(ports)) {
    const p = portPair(ports, dev)!;
    flows.push(flow(FlowKind.DEFAULT, 0, ENTRY_TABLE, 100, [inPortIs(p.rep)], [output(p.port)]));
    const t0 = chainTable(0);
    const rate = dev === UPLINK ? 0 : input.vfMaxTxRate?.[vfIndex(dev)] ?? 0;
    const police = rate ? vfRateMeter(vfIndex(dev), rate) : undefined;
    if (police) vfMeters.push(police);
    const classify: OfAction[] = [...(police ? [{ a: 'meter', id: police.id } as const] : []), t0 === undefined ? output(p.rep) : resubmit(t0)];
    // The same action once more above, for untagged frames only: the classifier then un-wildcards the whole
    // TCI of every frame from this port, so each datapath flow's VLAN mask is 0xffff, the one form OVS's
    // tc offload takes for tagged and untagged frames alike (netdev-offload-tc.c: a partial mask is refused).
    flows.push(flow(FlowKind.DEFAULT, 0, ENTRY_TABLE, 101, [inPortIs(p.port), UNTAGGED], classify));
    flows.push(flow(FlowKind.DEFAULT, 0, ENTRY_TABLE, 100, [inPortIs(p.port)], classify));
  }
  flows.push(flow(FlowKind.DEFAULT, 0, ENTRY_TABLE, 0, [], DROP));

  // A chain's entry table starts at its first prio; each prio table falls through to the next,
  // and the chain's last sends the packet up its representor.
  for (const [c, ps] of prios) {
    flows.push(flow(FlowKind.DEFAULT, 0, chainTable(c)!, 0, [], [resubmit(tables.get(key(c, ps[0]!))!)]));
    for (const p of ps) {
      const t = tables.get(key(c, p))!, next = nextTable(c, p);
      if (next !== undefined) flows.push(flow(FlowKind.DEFAULT, 0, t, 0, [], [resubmit(next)]));
      else for (const dev of repNames(ports)) flows.push(flow(FlowKind.DEFAULT, 0, t, 0, [inPortIs(portPair(ports, dev)!.port)], [handOffAction(ports, dev, c)]));
    }
  }

  // Rank of each rule inside its tcf_proto (dev, chain, prio): masks in first-insertion order, then install order.
  // Rules are handled by their index in `live`; each rule's memo is looked up once (a WeakMap lookup is the
  // dearest step of an incremental translation).
  const memos: RuleMemo[] = live.map(({ rule }) => {
    let m = input.memo?.get(rule);
    if (!m) {
      m = {};
      input.memo?.set(rule, m);
    }
    m.tableKey ??= key(rule.chain, rule.prio);
    m.groupKey ??= `${rule.dev}|${m.tableKey}`;
    return m;
  });
  const pushTo = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
    const l = m.get(k);
    if (l) l.push(v);
    else m.set(k, [v]);
  };
  const groups = new Map<string, number[]>();
  live.forEach((_, i) => pushTo(groups, memos[i]!.groupKey!, i));
  const rank = new Int32Array(live.length);
  for (const g of groups.values()) {
    const masks = new Map<string, number[]>();
    // A shape is kept only in a caller's memo: without one it would live (and be copied by the GC) to the end.
    for (const i of g) pushTo(masks, memos[i]!.shape ?? (input.memo ? (memos[i]!.shape = maskShape(live[i]!.rule.match)) : maskShape(live[i]!.rule.match)), i);
    let n = 0;
    for (const l of masks.values()) for (const i of l) rank[i] = n++;
  }

  // A goto on a loop of chains stays in software, where the loop ends as the kernel ends it (translator/loops.ts).
  const onLoops = rulesOnLoops(live);
  // A rewrite before a goto is undone at a later hand-off, which chain 0 does not do: no rule may jump back there.
  const restoreOk = !live.some(({ rule }) => rule.chain !== 0 && rule.actions.some((a) => 'control' in a && a.control.kind === 'goto' && a.control.chain === 0));
  const slots = new Set<number>();
  // Saved copies of unpinned fields, by slot and prerequisites: one restore flow each serves every rule.
  const copies = new Map<string, Saved>();
  const meterIds = new Map<string, number>();
  const ones: ReturnType<typeof translateOne>[] = new Array(live.length);
  // A mirror copy before a goto may be deferred to where the path ends (docs/mapping.md): later chains then need to know.
  const pendingMirrors = restoreOk && live.some(({ rule }) => rule.actions.some((a) => a.kind === 'mirred' && a.control.kind !== 'stolen') && rule.actions.some((a) => 'control' in a && a.control.kind === 'goto' && a.control.chain !== 0));
  const ctx0 = { ports, zone, maxFlowsPerRule, ...(input.outerTpid !== undefined ? { outerTpid: input.outerTpid } : {}), restoreOk, pendingMirrors };
  const translateAt = (i: number, restoreCover?: RuleContext['restoreCover']) => {
    const memo = memos[i]!;
    const localMeters: (OfMeter & { key: string })[] = [];
    const forced = input.notOffloadable?.get(live[i]!.id) ?? onLoops.get(live[i]!.id);
    const one = translateOne(live[i]!, tables.get(memo.tableKey!)!, rank[i]!, forced ? {} : memo, {
      ports,
      zone,
      maxFlowsPerRule,
      ...(input.outerTpid !== undefined ? { outerTpid: input.outerTpid } : {}),
      ...(restoreCover ? { restoreCover } : {}),
      chainTable,
      nextTable,
      restoreOk,
      pendingMirrors,
      meter(spec, key) {
        // One meter per police action: per index when it has one (shared across filters), else per rule and place.
        const known = meterIds.get(key) ?? localMeters.find((m) => m.key === key)?.id;
        if (known) return known;
        const m = { id: input.meterId ? input.meterId(key) : meterIds.size + 1 + localMeters.length, spec, key };
        localMeters.push(m);
        return m.id;
      },
    }, input.memo !== undefined && !forced, forced);
    // A rule's meters exist only if the rule made it into hardware.
    if (one.result.offloaded) {
      for (const m of localMeters) {
        meterIds.set(m.key, m.id);
        meters.push({ id: m.id, spec: m.spec });
      }
    }
    ones[i] = one;
  };
  for (let i = 0; i < live.length; i++) translateAt(i);
  splitZones(live, ones, tables, memos, rank, ctx0);
  // A masked restore puts back only its rule's bits: rules past chain 0 writing other bits of that field are
  // translated again to hand the packet off where such a restore may hold their slot (docs/mapping.md, misses).
  const cover = new Map<number, bigint>();
  for (const one of ones) for (const s of one.saves ?? []) if (s.covers !== undefined) cover.set(s.slot, (cover.get(s.slot) ?? s.covers) & s.covers);
  if (cover.size) {
    const restoreCover = (slot: number) => cover.get(slot);
    for (let i = 0; i < live.length; i++) {
      if (live[i]!.rule.chain !== 0 && ones[i]!.saves?.some((s) => cover.has(s.slot) && (s.writes & ~cover.get(s.slot)!) !== 0n)) translateAt(i, restoreCover);
    }
  }
  for (let i = 0; i < live.length; i++) {
    const one = ones[i]!;
    for (const f of one.flows) flows.push(f);
    for (const s of one.saves ?? []) {
      slots.add(s.slot);
      if (s.save) copies.set(JSON.stringify([s.slot, s.prereq]), s);
    }
    perRule.set(live[i]!.id, one.result);
  }
  // The hand-off of chains other than 0: each slot a rule may have taken is looked up (reg14 = slot + 1 selects
  // the rule's restore flows, which match its id in the slot's register), then the packet goes up its representor.
  // Registers live in OpenFlow only: the datapath flow sees the net rewrite, none when all is put back.
  if (chains.some((c) => c !== 0)) {
    const restore = [...slots].sort((a, b) => a - b).flatMap((s) => [setField(RESTORE_SLOT_REG, s + 1), resubmit(HANDOFF_TABLE)]);
    for (const dev of repNames(ports)) {
      const p = portPair(ports, dev)!;
      flows.push(flow(FlowKind.DEFAULT, 0, HANDOFF_TABLE, 1, [inPortIs(p.port), mf(RESTORE_SLOT_REG, 0)], [...restore, output(p.rep)]));
    }
    // A slot holding a saved copy (reg13 bit set) moves it back, above the rules' own restores, which match a rule id.
    for (const s of copies.values()) {
      const bit = 1 << s.slot;
      flows.push(flow(FlowKind.DEFAULT, 0, HANDOFF_TABLE, 20, [mf(RESTORE_SLOT_REG, s.slot + 1), mf(VALUE_BITS_REG, bit, bit), ...s.prereq], s.restore));
    }
    flows.push(flow(FlowKind.DEFAULT, 0, HANDOFF_TABLE, 0, [], DROP));
  }
  if (pendingMirrors) flows.push(flow(FlowKind.DEFAULT, 0, EMIT_TABLE, 0, [], DROP));
  return { flows, meters: [...meters, ...vfMeters], perRule, tables, ...(onLoops.size ? { loops: true as const } : {}), ...(pendingMirrors ? { pendingMirrors: true as const } : {}) };
}

interface RuleContext {
  ports: PortMap;
  restoreCover?: (slot: number) => bigint | undefined;
  restoreOk: boolean;
  pendingMirrors?: boolean;
  zone(guestZone: number): number;
  maxFlowsPerRule: number;
  outerTpid?: number;
  chainTable(chain: number): number | undefined;
  nextTable(chain: number, prio: number): number | undefined;
  meter(spec: string, key: string): number;
}

/**
 * One rule at its table and rank: its flows (a trap if it cannot be offloaded)
 * and result. Flows of a rule that names no other chain and no meter depend
 * on nothing else and are kept in its memo for the next call.
 */
function translateOne(r: RuleInput, table: number, rank: number, memo: RuleMemo, ctx: RuleContext, keep: boolean, forced?: VpfError): { flows: OfFlow[]; result: RuleResult; saves?: Saved[] } {
  const { id } = r;
  const { ports } = ctx;
  if (2 * rank + 2 >= TOP) return { flows: [], result: { offloaded: false, flows: 0, refused: true, error: refusal(Errno.ENOSPC, 'too many filters in one prio', 'prio') } };
  if (memo.sig && memo.sig.table === table && memo.sig.rank === rank && memo.sig.id === id) return { flows: memo.flows!, result: memo.result! };
  const rule = ruleView(r.rule);
  let shared = false;
  const hi = TOP - 2 * rank, lo = hi - 1;
  const inPort = inPortIs(portPair(ports, rule.dev)!.port);
  let out: OfFlow[];
  let result: RuleResult;
  const toRep = handOffAction(ports, rule.dev, rule.chain);
  let saves: Saved[] | undefined;
  let matches: MatchField[][] | undefined;
  try {
    if (forced) throw forced;
    if (rule.flags.skipHw) throw refusal(Errno.EOPNOTSUPP, 'skip_hw: the guest keeps this filter in software', 'skip_hw');
    // A rule in a conntrack zone depends on the zone's other rules (splitZones): never kept in the memo.
    const zoned: RuleContext = { ...ctx, zone: (z) => ((shared = true), ctx.zone(z)) };
    // Port rewrites on a filter without ip_proto: that protocol's flows, the rest of its packets trapped below them.
    const proto = impliedIpProto(rule);
    const view = proto === undefined ? rule : { ...rule, match: { ...rule.match, ipProto: proto } };
    matches = translateMatch(view, zoned);
    // An IPv6 later fragment has nw_proto 44 in OVS (flower keeps the upper one): nw_frag=not_later leaves it to the trap.
    if (proto !== undefined && l3Protocol(view.match) === EthP.IPV6) matches = matches.map((m) => [...m, mf('ip_frag', 0, 2)]);
    const acts = translateActions(view, {
      ports,
      zone: zoned.zone,
      ruleId: id,
      restoreOk: ctx.restoreOk,
      pendingMirrors: ctx.pendingMirrors,
      ...(ctx.outerTpid !== undefined ? { outerTpid: ctx.outerTpid } : {}),
      ...(ctx.restoreCover ? { restoreCover: ctx.restoreCover } : {}),
      chainTable: (c) => {
        shared = true;
        return ctx.chainTable(c);
      },
      nextTable: (c, p) => {
        shared = true;
        return ctx.nextTable(c, p);
      },
      meter: (spec, key) => {
        shared = true;
        return ctx.meter(spec, key);
      },
    });
    if (acts.sideEffectThenSoftware) {
      throw refusal(
        Errno.EOPNOTSUPP,
        `the rule ${acts.sideEffectThenSoftware} and may then hand the packet to software, which classifies it from chain 0 again and would repeat that (docs/mapping.md, misses)`,
        'action',
      );
    }
    // The trap of the other protocols takes `lo`: possible only when no variant needs `hi` over a general one.
    // Frames of more tags than the rule counts: trapped at `hi`, over the rule's flows, which must then all sit at `lo`.
    const multi = multiTagged(rule, matches);
    const usesHi = acts.variants.some((v) => v.specific);
    if (multi.length && usesHi) {
      throw refusal(Errno.EOPNOTSUPP, 'num_of_vlans 1 without vlan_ethtype beside a ttl dec, a vlan pop or modify or a PCP-keeping modify: its flows and the trap of deeper tags would share a priority', 'num_of_vlans');
    }
    // skip_sw has no software copy to trap to; a NIC refuses it too (mlx5: "can't offload re-write of non TCP/UDP").
    if (proto !== undefined && (rule.flags.skipSw || usesHi)) {
      throw refusal(Errno.EOPNOTSUPP, `pedit of ${proto === 6 ? 'tcp' : 'udp'} ports under skip_sw, a ttl dec or a PCP-keeping vlan modify needs a filter that matches ip_proto ${proto === 6 ? 'tcp' : 'udp'}`, 'pedit');
    }
    out = [];
    for (const m of matches) {
      for (const v of acts.variants) out.push(flow(FlowKind.RULE, id, table, v.specific || proto !== undefined ? hi : lo, withPort(inPort, m, v.when), v.actions));
    }
    const trapActs = [toRep];
    if (proto !== undefined) for (const m of translateMatch(rule, zoned)) out.push(flow(FlowKind.TRAP, id, table, lo, withPort(inPort, m, NONE), trapActs));
    for (const m of ipv6LaterFragments(rule, matches)) out.push(flow(FlowKind.TRAP, id, table, hi, withPort(inPort, m, NONE), trapActs));
    for (const m of deeperTags(rule, ctx)) out.push(flow(FlowKind.TRAP, id, table, hi, withPort(inPort, m, NONE), trapActs));
    for (const m of multi) out.push(flow(FlowKind.TRAP, id, table, hi, withPort(inPort, m, NONE), trapActs));
    // What the rule saved, put back by the hand-off table when the packet misses later (docs/mapping.md, restore).
    for (const s of acts.saves ?? []) {
      if (s.save) continue; // a saved copy is put back by its slot's own flow (translate())
      out.push(flow(FlowKind.RULE, id, HANDOFF_TABLE, 10, [mf(RESTORE_SLOT_REG, s.slot + 1), mf(`reg${s.slot}`, id), ...s.prereq], s.restore));
    }
    saves = acts.saves;
    // Copies deferred to the path's end: sent from EMIT_TABLE by whichever later flow ends it in hardware.
    if (acts.deferred) out.push(flow(FlowKind.RULE, id, EMIT_TABLE, 10, [mf(VALUE_BITS_REG, id * 0x10000, PENDING_RULE_MASK)], acts.deferred));
    if (out.length > ctx.maxFlowsPerRule) throw refusal(Errno.ENOSPC, `the rule needs ${out.length} flows, more than ${ctx.maxFlowsPerRule}`, 'match');
    result = { offloaded: true, flows: out.length };
  } catch (e) {
    if (!(e instanceof VpfError)) throw e;
    // A NIC refuses a skip_sw filter it cannot hold; so does vpf.
    if (rule.flags.skipSw) return { flows: [], result: { offloaded: false, flows: 0, refused: true, error: e } };
    // Stays in the guest's software: traps at its place over its match keep lower offloaded flows from taking
    // its packets, and no other packet (the match is exact unless the match itself was the problem).
    const covered = matches ?? trapMatches(rule, ctx);
    const trapActs = [toRep];
    out = [...covered, ...ipv6LaterFragments(rule, covered), ...deeperTags(rule, ctx)].map((m) => flow(FlowKind.TRAP, id, table, hi, withPort(inPort, m, NONE), trapActs));
    result = { offloaded: false, flows: out.length, error: e };
  }
  if (keep && !shared) Object.assign(memo, { sig: { table, rank, id }, flows: out, result });
  return { flows: out, result, saves: result.offloaded ? saves : undefined };
}

/**
 * A conntrack zone is offloaded whole or not at all: host and guest conntrack
 * are two tables, so a zone whose connections were tracked partly by the host
 * (offloaded rules) and partly by the guest (a rule left to its software)
 * would see each connection half: replies +new or +inv, NAT bindings on one
 * side only. When any rule naming a zone stays in software, every rule naming
 * it goes there too, with the reason (docs/mapping.md, Conntrack zones).
 */
function splitZones(
  live: RuleInput[],
  ones: ReturnType<typeof translateOne>[],
  tables: Map<string, number>,
  memos: RuleMemo[],
  rank: ArrayLike<number>,
  ctx: Omit<RuleContext, 'chainTable' | 'nextTable' | 'meter'>,
): void {
  const inSoftware = new Map<number, number>();
  const zonesOf = live.map((r) => guestZones(r.rule));
  for (let i = 0; i < live.length; i++) {
    const res = ones[i]!.result;
    if (res.offloaded || res.refused) continue;
    for (const z of zonesOf[i]!) if (!inSoftware.has(z)) inSoftware.set(z, live[i]!.id);
  }
  if (!inSoftware.size) return;
  for (let i = 0; i < live.length; i++) {
    // skip_sw asks for hardware or nothing: the guest chose that split itself.
    if (!ones[i]!.result.offloaded || live[i]!.rule.flags.skipSw) continue;
    const z = zonesOf[i]!.find((x) => inSoftware.has(x));
    if (z === undefined) continue;
    const why = refusal(Errno.EOPNOTSUPP, `ct zone ${z} is not offloaded: another filter naming it (rule ${inSoftware.get(z)}) runs in the guest's software, and one zone's connections cannot be tracked half by the host, half by the guest`, 'ct zone');
    const noMore = () => {
      throw why;
    };
    ones[i] = translateOne(live[i]!, tables.get(memos[i]!.tableKey!)!, rank[i]!, {}, { ...ctx, chainTable: noMore, nextTable: noMore, meter: noMore }, false, why);
  }
}

/** Thrown through translateOne when a rule needs other rules' tables or meters. */
class DependsOnOthers extends Error {}

/**
 * The flows of one (dev, chain, prio) group, `members` in install order, at
 * `table`: exactly the flows translate() gives these rules, or undefined when
 * one of them names another chain or a meter (those depend on the whole rule
 * set: translate everything). The daemon uses it to change one group without
 * walking every rule of the VM.
 */
export function translateGroup(
  members: RuleInput[],
  table: number,
  input: Pick<TranslateInput, 'ports' | 'zone' | 'maxFlowsPerRule' | 'memo' | 'outerTpid' | 'notOffloadable'>,
): { flows: OfFlow[]; perRule: Map<number, RuleResult> } | undefined {
  const memoOf = (rule: FlowerRule): RuleMemo => {
    let m = input.memo?.get(rule);
    if (!m) {
      m = {};
      input.memo?.set(rule, m);
    }
    return m;
  };
  const byShape = new Map<string, RuleInput[]>();
  for (const r of members) {
    const m = memoOf(r.rule);
    const shape = (m.shape ??= maskShape(r.rule.match));
    const l = byShape.get(shape);
    if (l) l.push(r);
    else byShape.set(shape, [r]);
  }
  const rank = new Map<RuleInput, number>();
  let n = 0;
  for (const l of byShape.values()) for (const r of l) rank.set(r, n++);
  const ctx: RuleContext = {
    ports: input.ports,
    // A zone's rules are offloaded together or not at all (splitZones): a conntrack rule needs the whole set.
    zone: () => {
      throw new DependsOnOthers();
    },
    maxFlowsPerRule: input.maxFlowsPerRule ?? DEFAULT_MAX_FLOWS_PER_RULE,
    ...(input.outerTpid !== undefined ? { outerTpid: input.outerTpid } : {}),
    restoreOk: false,
    chainTable: () => {
      throw new DependsOnOthers();
    },
    nextTable: () => {
      throw new DependsOnOthers();
    },
    meter: () => {
      throw new DependsOnOthers();
    },
  };
  const flows: OfFlow[] = [];
  const perRule = new Map<number, RuleResult>();
  try {
    for (const r of members) {
      const forced = input.notOffloadable?.get(r.id);
      const one = translateOne(r, table, rank.get(r)!, forced ? {} : memoOf(r.rule), ctx, input.memo !== undefined && !forced, forced);
      for (const f of one.flows) flows.push(f);
      perRule.set(r.id, one.result);
    }
  } catch (e) {
    if (e instanceof DependsOnOthers) return undefined;
    throw e;
  }
  return { flows, perRule };
}

export { defaultPortMap, parsePortMap, type PortMap } from './portmap.js';
