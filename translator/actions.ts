// A flower action list as OpenFlow actions (ovs-actions(7)). Verdicts decide
// where the list ends: redirect/drop stop, pass/trap/pipe-at-end hand the
// packet to the representor (slow path), goto resubmits to the chain's table.
// What OpenFlow cannot do exactly is refused with EOPNOTSUPP and the reason.
import { refuse } from './refuse.js';
import type { Action, Control, FlowerRule, PoliceAction } from '../rules/model.js';
import { EthP } from '../rules/model.js';
import type { CtNat, PeditKey } from '../rules/model.js';
import { l3Protocol } from '../rules/validate.js';
import { guestZones } from '../rules/ctzone.js';
import { hexToBytes, ipToBytes, ipv6ToBytes } from '../rules/addr.js';
import type { FieldName, FieldValue, MatchField, OfAction, OfMeter, OfNat } from '../ovs/openflow/flow.js';
import { fieldByName } from '../ovs/openflow/oxm.js';
import { portPair, type PortMap } from './portmap.js';
import { ipv4Num, macNum, mf, taggedAlts, UNTAGGED } from './match.js';

/** Actions that only change the packet: a meter may go ahead of them unchanged in effect. */
const REWRITES = new Set<OfAction['a']>(['set_field', 'push_vlan', 'pop_vlan', 'push_mpls', 'pop_mpls', 'mod_nw_ttl', 'dec_ttl']);

export interface ActionContext {
  ports: PortMap;
  /** First table of chain N, or undefined when the chain has no filters (a goto there misses). */
  chainTable(chain: number): number | undefined;
  /** The table of the next prio in the chain, or undefined when this prio is its last (a continue there misses). */
  nextTable(chain: number, prio: number): number | undefined;
  zone(guestZone: number): number;
  /**
   * The meter of a police action, by `key`: one per police index (act_police.c:
   * the index is the action, filters bind it), so filters sharing an index share
   * one bucket and two indexes with equal rates are two. Returns its id.
   */
  meter(spec: string, key: string): number;
  /** The rule's id: what a rewrite-then-goto leaves in its save registers (docs/mapping.md, restore). */
  ruleId?: number;
  /** False when some rule jumps back to chain 0, whose hand-offs do not restore: no rewrite may then precede a goto. */
  restoreOk?: boolean;
  /** Some rule defers its mirror copies (reg13 bit 15): rules in chains other than 0 take a pending copy into account. */
  pendingMirrors?: boolean;
  /** The VM's declared outer TPID: later chains' VLAN filters are offloaded on the strength of it. */
  outerTpid?: number;
  /**
   * The bits of a slot's field that every rule's restore of it puts back, when some restore is masked
   * (undefined: all). A rule finding the slot taken that writes other bits hands the packet off instead.
   */
  restoreCover?: (slot: number) => bigint | undefined;
}

/**
 * A field a rewrite-then-goto changes and a later hand-off to software puts
 * back (reg15 bit `slot` says the slot is taken). Either the rule's own match
 * pins the value it had, and register `reg<slot>` names the rule that changed
 * it first; or `save` copies the original bits into `reg<slot>` (reg13 bit
 * `slot` says so), for fields of up to 32 bits the match does not pin, and
 * MACs (the high 16 bits in a quarter of metadata).
 */
export interface Saved {
  slot: number;
  /** Actions that put the field back: set_field of the pinned value, or a move of the saved bits. */
  restore: OfAction[];
  /** Match fields the restore needs (OpenFlow prerequisites). */
  prereq: MatchField[];
  /** Moves of the original bits into reg<slot>, ahead of the rule's rewrites (unpinned fields only). */
  save?: OfAction[];
  /** The bits of the field the rule writes (the tos byte for slot 6). */
  writes: bigint;
  /** The bits the restore puts back, when not the whole field: a masked restore of what the match pins. */
  covers?: bigint;
}

/** Where chains other than 0 hand a packet to software: restores, then output to the representor (translate()). */
export const HANDOFF_TABLE = 253;
/** reg15: which save slots are taken; reg14: the slot a restore lookup in HANDOFF_TABLE is for. */
export const SAVED_BITS_REG = 'reg15';
export const RESTORE_SLOT_REG = 'reg14';
/** reg13: the taken slots whose register holds the field's original bits, not a rule id. */
export const VALUE_BITS_REG = 'reg13';
/**
 * Deferred mirror copies: reg13 bit 15 says copies are pending, bits 16-31 name the rule that made them; a path
 * that ends in hardware sends them from EMIT_TABLE first, a hand-off drops them (software makes them again).
 */
export const EMIT_TABLE = 252;
export const PENDING_BIT = 0x8000;
export const PENDING_RULE_MASK = 0xffff0000;
const MAX_PENDING_RULE = 0xffff;
/** Actions that change the packet a mirror copy carries. */
const changesPacket = (x: OfAction) => REWRITES.has(x.a) || (x.a === 'ct' && x.nat !== undefined) || x.a === 'meter';
const reg = (slot: number): FieldName => `reg${slot}`;
/** The save slot of the outer VLAN tag: a stack, not a field, so a second rule changing it hands the packet off instead. */
const VLAN_SLOT = 12;

/** One way to run the action list; `when` adds match fields that select this variant (ttl dec). */
export interface ActionVariant {
  when: MatchField[];
  actions: OfAction[];
  /** Variants with a `when` must sit above the general one. */
  specific: boolean;
}


/** An immediate set_field (`mod`: printed as mod_dl_* / mod_nw_*). */
export const setField = (field: FieldName, value: FieldValue, mask?: FieldValue, mod?: boolean): OfAction => (mod ? { a: 'set_field', field, value, mask, mod } : { a: 'set_field', field, value, mask });
export const output = (port: number): OfAction => ({ a: 'output', port });
export const resubmit = (table: number): OfAction => ({ a: 'resubmit', table });
const IN_PORT: OfAction = { a: 'in_port' };
const POP_VLAN: OfAction = { a: 'pop_vlan' };

function out(ctx: ActionContext, rule: FlowerRule, dev: string, toRep: boolean): OfAction {
  const pair = portPair(ctx.ports, dev);
  if (!pair) return refuse(`no port for representor ${dev} in this VM`, 'mirred dev');
  const self = portPair(ctx.ports, rule.dev)!;
  const port = toRep ? pair.rep : pair.port;
  // OpenFlow drops output to the ingress port unless it is named in_port (ovs-actions(7) output).
  return port === self.port ? IN_PORT : output(port);
}

/**
 * The hand-off to software. Chain 0 is entered with the packet as it arrived, so its hand-off is a plain output;
 * deeper chains may see a rewritten packet and go through HANDOFF_TABLE, which puts saved fields back first.
 */
export const handOffAction = (ports: PortMap, dev: string, chain: number): OfAction => (chain === 0 ? output(portPair(ports, dev)!.rep) : resubmit(HANDOFF_TABLE));
const slowPath = (ctx: ActionContext, rule: FlowerRule) => handOffAction(ctx.ports, rule.dev, rule.chain);

interface PeditOp {
  hdr: string;
  field: string;
  op: 'set' | 'dec';
  /** The field's new bits: a number up to 48 bits (MAC, IPv4, uint), bytes for IPv6. */
  value?: FieldValue;
  /** The bits the set writes; undefined: the whole field. */
  mask?: FieldValue;
}

/**
 * The header bytes each rewritable field occupies (act_pedit.c offsets from the header start, as
 * TCA_PEDIT_KEY_EX_HTYPE_* place them): the fields OVS 3.1's tc offload turns a masked set into
 * (netdev-offload-tc.c set_flower_map: eth src/dst, ipv4 src/dst/ttl/tos, ipv6 src/dst/hlimit, tcp/udp ports).
 */
const PEDIT_FIELDS: { htype: string; hdr: string; field: string; off: number; len: number; kind: 'mac' | 'ip' | 'uint' }[] = [
  { htype: 'eth', hdr: 'eth', field: 'dst', off: 0, len: 6, kind: 'mac' },
  { htype: 'eth', hdr: 'eth', field: 'src', off: 6, len: 6, kind: 'mac' },
  { htype: 'ip4', hdr: 'ip', field: 'tos', off: 1, len: 1, kind: 'uint' },
  { htype: 'ip4', hdr: 'ip', field: 'ttl', off: 8, len: 1, kind: 'uint' },
  { htype: 'ip4', hdr: 'ip', field: 'src', off: 12, len: 4, kind: 'ip' },
  { htype: 'ip4', hdr: 'ip', field: 'dst', off: 16, len: 4, kind: 'ip' },
  { htype: 'ip6', hdr: 'ip6', field: 'hoplimit', off: 7, len: 1, kind: 'uint' },
  { htype: 'ip6', hdr: 'ip6', field: 'src', off: 8, len: 16, kind: 'ip' },
  { htype: 'ip6', hdr: 'ip6', field: 'dst', off: 24, len: 16, kind: 'ip' },
  { htype: 'tcp', hdr: 'tcp', field: 'sport', off: 0, len: 2, kind: 'uint' },
  { htype: 'tcp', hdr: 'tcp', field: 'dport', off: 2, len: 2, kind: 'uint' },
  { htype: 'udp', hdr: 'udp', field: 'sport', off: 0, len: 2, kind: 'uint' },
  { htype: 'udp', hdr: 'udp', field: 'dport', off: 2, len: 2, kind: 'uint' },
];

/**
 * Sets of the `mask` bits of a field whose matches are not maskable (ip_dscp, nw_ecn, nw_ttl): the whole field
 * unmasked, else one masked set per run of bits, OVS's load: to a bit range (flow.ts LOAD_NAME). OVS makes them
 * a masked datapath set, which its tc offload writes back as a pedit key with that mask.
 */
function bitSets(field: FieldName, value: number, mask: number, width: number): OfAction[] {
  const all = 2 ** width - 1;
  if (!mask) return [];
  if (mask === all) return [setField(field, value)];
  const out: OfAction[] = [];
  for (let b = 0; b < width; ) {
    if (!(mask & (1 << b))) {
      b++;
      continue;
    }
    let run = 0;
    while (b < width && mask & (1 << b)) run |= 1 << b++;
    out.push(setField(field, value & run, run));
  }
  return out;
}

/** Field bytes as the value a set_field carries: bytes for IPv6, else the big-endian integer. */
const fieldValue = (b: Uint8Array): FieldValue => (b.length === 16 ? b : b.reduce((a, x) => a * 256 + x, 0));

/** iproute2's ttl/hoplimit dec: an add of 0xff on that byte alone (tc/p_ip.c, p_ip6.c; rules/tcsyntax/pedit.ts). */
const isTtlDec = (k: PeditKey): { hdr: string; field: string } | undefined =>
  k.htype === 'ip4' && k.offset === 8 && k.mask === 0x00ffffff && k.value === 0xff000000
    ? { hdr: 'ip', field: 'ttl' }
    : k.htype === 'ip6' && k.offset === 4 && k.mask === 0xffffff00 && k.value === 0xff
      ? { hdr: 'ip6', field: 'hoplimit' }
      : undefined;

/**
 * pedit keys as per-field sets with the bits they write (masked when partial: `retain`, a DSCP-only tos,
 * the partial MAC/IP words a guest OVS emits) and ttl/hoplimit decs. A set key is new = (old & mask) ^ val
 * (act_pedit.c); it is a set of the bits outside `mask` only when val has no bit inside it.
 */
function peditOps(keys: PeditKey[]): PeditOp[] {
  const ops: PeditOp[] = [];
  // Pending sets per header byte: bits written and their values; later keys override earlier ones.
  const bits = new Map<string, { set: number; val: number }>();
  const flush = () => {
    for (const f of PEDIT_FIELDS) {
      const m = new Uint8Array(f.len), v = new Uint8Array(f.len);
      for (let j = 0; j < f.len; j++) {
        const b = bits.get(`${f.htype}:${f.off + j}`);
        if (!b) continue;
        m[j] = b.set;
        v[j] = b.val;
        bits.delete(`${f.htype}:${f.off + j}`);
      }
      if (m.every((x) => x === 0)) continue;
      const full = m.every((x) => x === 0xff);
      ops.push({ hdr: f.hdr, field: f.field, op: 'set', value: fieldValue(v), ...(full ? {} : { mask: fieldValue(m) }) });
    }
    if (bits.size) refuse(`pedit of ${[...bits.keys()][0]!.replace(':', ' byte ')}: only eth src/dst, ip src/dst/tos/ttl, ip6 src/dst/hoplimit and tcp/udp ports are offloaded`, 'pedit');
  };
  for (const k of keys) {
    if (k.cmd === 'add') {
      // The one add OVS can express: iproute2's ttl/hoplimit dec (an add of 0xff on that byte alone).
      const dec = isTtlDec(k);
      if (!dec) return refuse('pedit add other than ip ttl / ip6 hoplimit dec cannot be offloaded', 'pedit');
      flush();
      ops.push({ hdr: dec.hdr, field: dec.field, op: 'dec' });
      continue;
    }
    if ((k.value & k.mask) >>> 0) refuse('pedit set whose value has bits under its mask flips those bits (act_pedit.c xor): not offloaded', 'pedit');
    for (let j = 0; j < 4; j++) {
      const shift = 8 * (3 - j);
      const set = ~(k.mask >>> shift) & 0xff;
      if (!set) continue;
      const key = `${k.htype}:${k.offset + j}`;
      const old = bits.get(key) ?? { set: 0, val: 0 };
      bits.set(key, { set: old.set | set, val: (old.val & ~set) | ((k.value >>> shift) & set) });
    }
  }
  flush();
  return ops;
}

export interface TranslatedActions {
  variants: ActionVariant[];
  /**
   * What the list does that software would do again ("rewrites the packet",
   * "sends a mirror copy", "meters the packet") when a verdict after it can
   * hand the packet to software, which runs the guest's chain 0 on it anew.
   */
  sideEffectThenSoftware?: string;
  /** Fields this rule rewrites before a goto and a miss after it puts back (its flows save them). */
  saves?: Saved[];
  /** Mirror copies this rule defers to the end of the path (EMIT_TABLE), in order. */
  deferred?: OfAction[];
}

type Tagged = 'yes' | 'no' | 'unknown';

/**
 * The ip_proto a filter's port rewrites imply when it names none: act_pedit.c
 * writes a tcp/udp key at the transport header whatever protocol is there,
 * and OpenFlow's tcp_dst/udp_dst need nw_proto (ovs-fields(7) prerequisites).
 * So an IPv4/IPv6 filter without ip_proto whose pedit keys are all of one L4
 * header is offloaded for that protocol's packets; the rest go to software
 * (translateOne). undefined: no such rewrite, or not one protocol.
 */
export function impliedIpProto(rule: FlowerRule): number | undefined {
  const l3 = l3Protocol(rule.match);
  // ip_flags on IPv6 may name later fragments, which OVS never sees with an upper protocol: left to the trap whole.
  if (rule.match.ipProto !== undefined || (l3 !== EthP.IP && l3 !== EthP.IPV6) || (l3 === EthP.IPV6 && rule.match.ipFlags)) return undefined;
  // Every rule comes through here: a plain loop, no arrays.
  let proto: number | undefined;
  for (const a of rule.actions) {
    if (a.kind !== 'pedit') continue;
    for (const k of a.keys) {
      const p = k.htype === 'tcp' ? 6 : k.htype === 'udp' ? 17 : undefined;
      if (p === undefined) continue;
      if (proto !== undefined && proto !== p) return undefined;
      proto = p;
    }
  }
  // A rule in a conntrack zone whose other protocols went to software would split the zone between the host's
  // conntrack and the guest's (docs/mapping.md, Conntrack zones): trapped whole, and its zone with it.
  return proto !== undefined && !guestZones(rule).length ? proto : undefined;
}

export function translateActions(rule: FlowerRule, ctx: ActionContext): TranslatedActions {
  // VLAN presence as far as the match tells: the protocol gate makes ip/ipv6/arp/mpls untagged.
  const tagged0: Tagged =
    rule.protocol === EthP.ALL ? (rule.match.numOfVlans === 0 ? 'no' : 'unknown') : rule.protocol === EthP.VLAN_8021Q || rule.protocol === EthP.VLAN_8021AD ? 'yes' : 'no';
  if (tagged0 !== 'unknown' || !rule.actions.some((a) => a.kind === 'vlan' && a.op !== 'push')) return translateList(rule, ctx, tagged0);
  // A filter that sees tagged and untagged frames: act_vlan's pop and modify are no-ops on untagged ones
  // (act_vlan.c tcf_vlan_act), so untagged frames get their own flows above, in the offloadable
  // vlan_tci=0x0000/0xffff form, and tagged frames the rest. One meter per spec for both.
  const meters = new Map<string, number>();
  const c: ActionContext = { ...ctx, meter: (spec, key) => meters.get(key) ?? meters.set(key, ctx.meter(spec, key)).get(key)! };
  const untagged = translateList(rule, c, 'no');
  const tagged = translateList(rule, c, 'yes');
  // OpenFlow 1.1+ takes pop_vlan only where the match says a tag is there (OVS ofpact_check: OFPBAC_MATCH_INCONSISTENT):
  // tagged frames are named one PCP at a time, the presence form OVS's tc offload takes.
  const taggedVariants = tagged.variants.flatMap((v) => (v.when.some((m) => m.field === 'vlan_tci') ? [v] : taggedAlts().map((when) => ({ when: [...when, ...v.when], actions: v.actions, specific: true }))));
  return {
    variants: [...untagged.variants.map((v) => ({ when: [UNTAGGED, ...v.when], actions: v.actions, specific: true })), ...taggedVariants],
    sideEffectThenSoftware: untagged.sideEffectThenSoftware ?? tagged.sideEffectThenSoftware,
    saves: untagged.saves ?? tagged.saves,
  };
}

function translateList(rule: FlowerRule, ctx: ActionContext, tagged0: Tagged): TranslatedActions {
  const l3 = l3Protocol(rule.match);
  const ipv4 = l3 === EthP.IP, ipv6 = l3 === EthP.IPV6;
  const mpls = l3 === EthP.MPLS_UC || l3 === EthP.MPLS_MC;
  const acts: OfAction[] = [];
  let ttlDec = false;
  // The ttl/hoplimit as far as the match and earlier sets tell (a dec of a known one is a set of the result),
  // and whether a set wrote part of an unknown one (the dec flows split on the arriving value).
  let ttl = rule.match.ipTtl?.mask === 0xff ? rule.match.ipTtl.value : undefined;
  let ttlPartlySet = false;
  // What a software re-run would repeat (docs/mapping.md, misses): rewrites, copies out, meters, in the order
  // they happened (the first is the one a refusal names; copies alone may be deferred).
  const effects = new Set<string>();
  const did = (what: string) => void effects.add(what);
  // Mirror copies, as their own output actions (a copy to in_port must not share the redirect's object).
  const mirrorOuts: OfAction[] = [];
  let deferring = false;
  // VLAN presence as far as the match and earlier actions tell, and the outer tag's TPID/PCP when a push set them.
  let tagged = tagged0;
  // A filter on a VLAN protocol (offloaded under a declared outer TPID) sees frames tagged with it.
  let tag: { tpid: number; pcp: number } | undefined = tagged0 === 'yes' && rule.match.vlanPrio !== undefined ? { tpid: rule.protocol, pcp: rule.match.vlanPrio } : undefined;
  // A modify of the frame's own tag without a priority keeps its PCP: one flow per PCP value (finish()).
  let pcpSplit = false;
  let ended: 'stop' | 'software' | undefined;
  let repeated: string | undefined;
  // Rewrites a hand-off can undo: the rule's match pins what they change (pinnedRestore).
  const saves: Saved[] = [];
  let saving = false;
  // A ct() without table= ran earlier in the list (the datapath tracks and NATs the packet in place), and which
  // sides its NAT may have changed: OpenFlow's view of the packet after it is untracked and un-NATed (inlineCt).
  let inlineCt = false;
  const natted = new Set<'src' | 'dst'>();
  const rewrote = (s: Saved | undefined) => {
    if (!s) return did('rewrites the packet');
    const at = saves.findIndex((x) => x.slot === s.slot);
    const same = saves[at];
    // Two masked sets of one field write different bits: the restore puts back both. A saved copy of the
    // whole field (taken before any rewrite of the rule) puts back everything, so it replaces pinned restores.
    if (!same) return void saves.push(s);
    const writes = same.writes | s.writes;
    if (same.save) return void (same.writes = writes);
    if (s.save) return void (saves[at] = { ...s, writes });
    for (const a of s.restore) if (!same.restore.some((b) => JSON.stringify(b) === JSON.stringify(a))) same.restore.push(a);
    same.writes = writes;
    if (same.covers === undefined || s.covers === undefined) delete same.covers;
    else same.covers |= s.covers;
  };
  // The tag changes so far, relative to the frame as it came: tags pushed and still on, original tags removed,
  // and whether the original outer tag was modified in place. The original tag is known when the filter is on a
  // VLAN protocol (offloaded under a declared outer TPID) and pins the VID and PCP, as a guest OVS's megaflow does.
  const orig = (rule.protocol === EthP.VLAN_8021Q || rule.protocol === EthP.VLAN_8021AD) && rule.match.vlanId !== undefined && rule.match.vlanPrio !== undefined
    ? { tpid: rule.protocol, vid: rule.match.vlanId, pcp: rule.match.vlanPrio }
    : undefined;
  // With vlan-limit 1 OVS parses one tag: after a pop of a frame with two, OpenFlow sees it untagged where tc sees the
  // inner tag. A non-VLAN vlan_ethtype keeps such frames off this rule's flows (its deeper-tag traps take them).
  const oneTag = rule.match.vlanEthType !== undefined && rule.match.vlanEthType !== EthP.VLAN_8021Q && rule.match.vlanEthType !== EthP.VLAN_8021AD;
  const vlan = { pushed: 0, removed: 0, modified: false, foreign: false };
  const vlanChanged = (op: 'push' | 'pop' | 'modify', tpid?: number) => {
    // A tag of another TPID than the declared one would reach later chains, whose VLAN filters assume the declared one.
    if (tpid !== undefined && ctx.outerTpid !== undefined && tpid !== ctx.outerTpid) vlan.foreign = true;
    if (op === 'push') vlan.pushed++;
    else if (op === 'pop') vlan.pushed ? vlan.pushed-- : vlan.removed++;
    else if (!vlan.pushed) vlan.modified = true;
    const at = saves.findIndex((x) => x.slot === VLAN_SLOT);
    if (at >= 0) saves.splice(at, 1);
    const r = vlanRestore();
    if (r === undefined) did('rewrites the packet');
    else if (r.length) saves.push({ slot: VLAN_SLOT, restore: r, prereq: r[0] === POP_VLAN ? [mf('vlan_tci', 0x1000, 0x1000)] : [], writes: 0n });
  };
  /** What puts the tag stack back as it came: pop what this rule pushed, push the original back; undefined if unknown. */
  const vlanRestore = (): OfAction[] | undefined => {
    // An original tag modified and still on is popped like a pushed one; popped or modified, it is pushed back.
    const replaced = vlan.modified && !vlan.removed;
    const pops = vlan.pushed + (replaced ? 1 : 0);
    const putBack = vlan.removed === 1 || replaced;
    if (vlan.foreign || vlan.removed > 1 || (vlan.removed && !oneTag) || pops > 1 || (putBack && !orig)) return undefined;
    return [
      ...(pops ? [POP_VLAN] : []),
      ...(putBack ? [{ a: 'push_vlan', tpid: orig!.tpid } as const, setField('vlan_vid', 0x1000 | orig!.vid), setField('vlan_pcp', orig!.pcp)] : []),
    ];
  };
  // A goto to a chain other than 0 may miss there: the hand-off then restores what `saves` lists, so software
  // runs chain 0 on the packet as it arrived (no rewrite is repeated on a rewritten packet).
  const handOff = (toChain?: number) => {
    const later = toChain !== undefined && toChain !== 0 && ctx.restoreOk && ctx.ruleId !== undefined;
    // Copies before a goto whose path may hand off are deferred: sent where the path ends in hardware, never
    // before a hand-off. Nothing may change the packet after the first copy (the copy carries it as it was then).
    const first = acts.indexOf(mirrorOuts[0]!);
    const deferrable = later && ctx.pendingMirrors && effects.size === 1 && mirrorOuts.length > 0 && ctx.ruleId! <= MAX_PENDING_RULE && !acts.slice(first).some(changesPacket);
    const effect = effects.values().next().value;
    if (effect && !deferrable) repeated ??= effect;
    else {
      if (effect) deferring = true;
      if (saves.length && later) saving = true;
      else if (saves.length) repeated ??= 'rewrites the packet';
    }
  };

  const verdict = (c: Control, i: number): boolean => {
    switch (c.kind) {
      case 'pipe':
        return false;
      case 'drop':
      case 'stolen':
        ended = 'stop';
        return true;
      case 'pass':
      case 'trap':
        acts.push(slowPath(ctx, rule));
        ended = 'software';
        handOff();
        return true;
      case 'goto': {
        // Any chain can miss (or trap), which hands the packet to software.
        const t = ctx.chainTable(c.chain);
        // The next chain would match on OpenFlow's view after an inline ct(): no ct_state, no NAT (inlineCt).
        if (inlineCt && t !== undefined) refuse(`action ${i + 1}: goto chain after ct with other actions between: OVS would go on without the ct state and NAT that tc's next chain sees (only ct(table=) carries them)`, 'ct');
        acts.push(t === undefined ? slowPath(ctx, rule) : resubmit(t));
        ended = 'software';
        handOff(t === undefined ? undefined : c.chain);
        return true;
      }
      case 'continue': {
        // TC_ACT_UNSPEC: fl_classify returns it and __tcf_classify tries the next tcf_proto, i.e. the next prio's
        // table (the rest of this prio is skipped, as this table's other flows are); past the chain's last, a miss.
        const t = ctx.nextTable(rule.chain, rule.prio);
        acts.push(t === undefined ? slowPath(ctx, rule) : resubmit(t));
        ended = 'software';
        handOff(t === undefined ? undefined : rule.chain);
        return true;
      }
      default:
        return refuse(`action ${i + 1}: verdict "${c.kind}" has no OpenFlow equivalent (reclassify restarts chain 0 without a bound OpenFlow keeps; jump skips actions)`, 'control');
    }
  };

  for (let i = 0; i < rule.actions.length; i++) {
    const a: Action = rule.actions[i]!;
    switch (a.kind) {
      case 'gact':
        break;
      case 'mirred': {
        const o = { ...out(ctx, rule, a.dev, a.direction === 'ingress') };
        acts.push(o);
        // A copy that leaves is a side effect: software would send it a second time.
        if (a.control.kind !== 'stolen') {
          mirrorOuts.push(o);
          did('sends a mirror copy');
        }
        break;
      }
      case 'vlan':
        if (a.op === 'pop') {
          // act_vlan.c: popping an untagged frame is a no-op.
          if (tagged === 'unknown') refuse('vlan pop on a filter that sees both tagged and untagged frames', 'vlan');
          if (tagged === 'yes') {
            acts.push(POP_VLAN);
            tagged = 'unknown';
            tag = undefined;
            vlanChanged('pop');
          }
        } else if (a.op === 'push') {
          if (a.protocol !== undefined && a.protocol !== EthP.VLAN_8021Q && a.protocol !== EthP.VLAN_8021AD) refuse('vlan push of an unknown TPID', 'vlan');
          acts.push({ a: 'push_vlan', tpid: a.protocol ?? EthP.VLAN_8021Q }, setField('vlan_vid', 0x1000 | a.id));
          // OVS push_vlan starts with PCP 0, as tc's push without priority does.
          if (a.prio) acts.push(setField('vlan_pcp', a.prio));
          tagged = 'yes';
          tag = { tpid: a.protocol ?? EthP.VLAN_8021Q, pcp: a.prio ?? 0 };
          vlanChanged('push', tag.tpid);
        } else {
          if (tagged === 'unknown') refuse('vlan modify after a vlan pop: the frame may or may not still carry a tag', 'vlan');
          if (tagged === 'yes') {
            // act_vlan.c (6.1): modify puts the tag back with the action's protocol (802.1Q unless given), the new VID,
            // and the old PCP unless a priority is given. set_field keeps the TPID, so a TPID that may change is a pop and a push.
            const tpid = a.protocol ?? EthP.VLAN_8021Q;
            if (tpid !== EthP.VLAN_8021Q && tpid !== EthP.VLAN_8021AD) refuse('vlan modify to an unknown TPID', 'vlan');
            const pcp = a.prio ?? tag?.pcp;
            if (tag?.tpid === tpid) {
              acts.push(setField('vlan_vid', 0x1000 | a.id));
              if (a.prio !== undefined) acts.push(setField('vlan_pcp', a.prio));
            } else {
              if (pcp === undefined && (pcpSplit || ttlDec)) refuse('vlan modify keeping the PCP combined with ttl dec or a second modify cannot be offloaded exactly', 'vlan');
              if (pcp === undefined) pcpSplit = true;
              acts.push(POP_VLAN, { a: 'push_vlan', tpid }, setField('vlan_vid', 0x1000 | a.id), pcp === undefined ? PCP_PLACEHOLDER : setField('vlan_pcp', pcp));
            }
            tag = pcp === undefined ? undefined : { tpid, pcp };
            vlanChanged('modify', tpid);
          }
        }
        break;
      case 'pedit':
        for (const op of peditOps(a.keys)) {
          const side = op.field === 'src' || op.field === 'sport' ? 'src' : op.field === 'dst' || op.field === 'dport' ? 'dst' : undefined;
          if (side && natted.has(side) && op.hdr !== 'eth') refuse(`pedit ${op.hdr} ${op.field} after ct nat: OVS's pipeline keeps the value from before the NAT and leaves out a set it takes for a no-op (measured, docs/mapping.md)`, 'pedit');
          const pin = pinnedRestore(rule, op) ?? savedCopy(rule, op);
          // A ttl dec on a pinned ttl is a set of the known result (no wrap, no dec_ttl flows needed).
          if (op.op === 'dec' && ttl !== undefined) op.value = (ttl + 255) & 0xff, op.op = 'set';
          rewrote(pin);
          const need = (ok: boolean, what: string) => ok || refuse(`pedit ${op.hdr} ${op.field} needs a filter that matches ${what} (OpenFlow set_field prerequisites)`, 'pedit');
          const f = `${op.hdr} ${op.field}`;
          // A partial set is OpenFlow 1.5's masked set_field: OVS makes it a masked set action, which its tc
          // offload writes back as pedit keys with the same mask (netdev-offload-tc.c parse_put_flow_set_masked_action).
          // An unmasked eth/ip set keeps its mod_dl_* / mod_nw_* spelling (the same Set-Field on the wire).
          const masked = (field: FieldName, mod?: boolean) => setField(field, op.value!, op.mask, mod && op.mask === undefined);
          if (f === 'eth dst') acts.push(masked('eth_dst', true));
          else if (f === 'eth src') acts.push(masked('eth_src', true));
          else if (f === 'ip src' || f === 'ip dst') need(ipv4, 'protocol ip') && acts.push(masked(op.field === 'src' ? 'ip_src' : 'ip_dst', true));
          else if (f === 'ip6 src' || f === 'ip6 dst') need(ipv6, 'protocol ipv6') && acts.push(masked(op.field === 'src' ? 'ipv6_src' : 'ipv6_dst'));
          else if (f === 'ip tos') {
            need(ipv4, 'protocol ip');
            // DSCP and ECN are two fields in OpenFlow; a set writes the bits of each that the key writes.
            const m = op.mask === undefined ? 0xff : Number(op.mask), v = Number(op.value);
            acts.push(...bitSets('ip_dscp', v >> 2, m >> 2, 6), ...bitSets('nw_ecn', v & 3, m & 3, 2));
          } else if ((f === 'ip ttl' && need(ipv4, 'protocol ip')) || (f === 'ip6 hoplimit' && need(ipv6, 'protocol ipv6'))) {
            if (op.op === 'set' && op.mask !== undefined) {
              acts.push(...bitSets('nw_ttl', Number(op.value), Number(op.mask), 8));
              if (ttl !== undefined) ttl = (ttl & ~Number(op.mask)) | Number(op.value);
              else ttlPartlySet = true;
            } else if (op.op === 'set') {
              acts.push({ a: 'mod_nw_ttl', ttl: op.value as number });
              ttl = op.value as number;
            } else {
              if (ttlDec || ttlPartlySet || pcpSplit || rule.match.ipTtl) refuse('ttl dec combined with a ttl match, a partial ttl set, another dec or a PCP-keeping vlan modify cannot be offloaded exactly', 'pedit');
              ttlDec = true;
              acts.push(TTLDEC_PLACEHOLDER);
            }
          } else if (op.hdr === 'tcp' || op.hdr === 'udp') {
            need(rule.match.ipProto === (op.hdr === 'tcp' ? 6 : 17), `ip_proto ${op.hdr}`);
            acts.push(masked(portField(op)));
          } else refuse(`pedit ${f} cannot be offloaded`, 'pedit');
        }
        break;
      case 'csum':
        break; // OVS keeps checksums right on every rewrite (ovs-actions(7) set_field)
      case 'tunnel_key':
        refuse('tunnel_key is not offloaded yet: tunnels need per-VM tunnel ports (a later design)', 'tunnel_key');
        break;
      case 'ct': {
        if (a.clear) {
          acts.push(CT_CLEAR);
          break;
        }
        if (a.helper) refuse('ct helpers (ALGs) cannot be offloaded', 'ct helper');
        // OVS tracks IP only: ct() on a flow without dl_type ip/ipv6 is OFPBAC_MATCH_INCONSISTENT.
        if (!ipv4 && !ipv6) refuse('ct needs a filter on protocol ip or ipv6 (OVS conntrack tracks IP only)', 'ct');
        const ct: OfAction & { a: 'ct' } = { a: 'ct', zone: ctx.zone(a.zone ?? 0) };
        if (a.commit) {
          ct.commit = true;
          if (a.force) ct.force = true;
        }
        if (a.nat) {
          // OVS refuses nat() whose address family differs from the flow's (OFPBAC_MATCH_INCONSISTENT), and one
          // refused flow fails the VM's whole bundle; the kernel takes it (act_ct.c stores the range as given).
          const addr = a.nat.type === 'restore' ? undefined : a.nat.addrMin;
          if (addr && addr.includes(':') !== ipv6) refuse(`ct nat to an IPv${ipv6 ? 4 : 6} address on a protocol ${ipv6 ? 'ipv6' : 'ip'} filter: OVS's nat() takes only the flow's own address family`, 'ct nat');
          ct.nat = ofNat(a.nat);
        }
        const exec: OfAction[] = [];
        // act_ct.c sets nothing under a zero mask (and OVS refuses a set_field with one: OFPBMC_BAD_WILDCARDS).
        if (a.mark && a.mark.mask) exec.push(setField('ct_mark', a.mark.value >>> 0, a.mark.mask >>> 0));
        if (a.label && /[^0]/.test(a.label.mask)) exec.push(setField('ct_label', hexToBytes(a.label.value), hexToBytes(a.label.mask)));
        if (exec.length) {
          if (!a.commit) refuse('ct mark/label without commit', 'ct');
          ct.exec = exec;
        }
        // tc's ct changes the packet in place; OVS's ct() forks, and only ct(table=T) continues with the tracked packet (P7).
        // A csum in between changes nothing OVS does (it keeps checksums right): the goto is still the ct's own.
        let n = i + 1;
        while (a.control.kind === 'pipe' && rule.actions[n]?.kind === 'csum' && (rule.actions[n] as { control: Control }).control.kind === 'pipe') n++;
        const next = rule.actions[n];
        const gotoChain = a.control.kind === 'goto' ? a.control.chain : a.control.kind === 'pipe' && next?.kind === 'gact' && next.control.kind === 'goto' ? next.control.chain : undefined;
        if (gotoChain !== undefined) {
          const t = ctx.chainTable(gotoChain);
          if (t === undefined) {
            acts.push(ct, slowPath(ctx, rule));
          } else acts.push({ ...ct, table: t });
          if (a.nat && a.nat.type !== 'restore') did('rewrites the packet');
          handOff(t === undefined ? undefined : gotoChain);
          ended = 'software';
        } else {
          // Without table=, the datapath runs ct() on the packet in place as act_ct.c does: the outputs after it
          // carry the NATed packet (measured on OVS 3.1, docs/mapping.md). OpenFlow's own view is not updated
          // (ofproto-dpif-xlate.c compose_conntrack_action clears ct_* and never applies the NAT to the flow).
          acts.push(ct);
          inlineCt = true;
          if (a.nat) {
            // A restore (bare `nat`) may change either side; software re-running it would see the changed packet.
            if (a.nat.type !== 'dst') natted.add('src');
            if (a.nat.type !== 'src') natted.add('dst');
            did('rewrites the packet');
          }
          if (a.control.kind !== 'pipe') verdict(a.control, i);
        }
        if (ended) return finish();
        continue;
      }
      case 'police': {
        const meter = policeMeter(a);
        if (!meter) {
          // A police without a rate (6.1 creates one for `police index N` naming no action yet) never exceeds,
          // unless an mtu bounds it (act_police.c tcf_police_act): it only passes the conform verdict on.
          if (a.mtu && a.mtu < 0xffffffff) refuse('police mtu without a rate has no meter equivalent', 'police');
          break;
        }
        const spec = 'spec' in meter ? meter.spec : refuse(meter.refusal, 'police');
        // OVS 3.1 takes a meter only as the first instruction ("meter must appear before apply_actions"). Ahead of
        // rewrites it is the same police (a dropped packet's rewrite is never seen; only a size change, vlan
        // push/pop, is counted differently); ahead of a copy out or a ct commit it would drop what tc let go.
        if (acts.some((x) => !REWRITES.has(x.a))) refuse('police after an output or ct: OVS takes a meter only before every other action', 'police');
        acts.unshift({ a: 'meter', id: ctx.meter(spec, a.index ? `index ${a.index}` : `rule ${ctx.ruleId ?? 0} action ${i}`) });
        // Software would police the packet a second time, in its own bucket.
        did('meters the packet');
        break;
      }
      case 'skbedit':
        if (a.priority !== undefined || a.ptype !== undefined || a.queueMapping !== undefined) refuse('skbedit priority/ptype/queue_mapping have no OpenFlow equivalent', 'skbedit');
        // set(skb_mark) is no action OVS's tc offload knows (netdev-offload-tc.c: "unsupported set action type"), but a
        // mark nobody reads need not be written: flower cannot match it, a VF or the wire never sees it, and the
        // guest's stack gets the packet through a hand-off, where software runs this rule again and sets it. Only a
        // mirred ingress after it, or a later chain or prio that may do one, would deliver it marked.
        if (a.mark && rule.actions.slice(i).some((b) => (b.kind === 'mirred' && b.direction === 'ingress') || ['goto', 'continue', 'reclassify', 'jump'].includes(b.control.kind))) {
          refuse('skbedit mark before a mirred ingress or another chain or prio: OVS cannot offload a pkt_mark rewrite (netdev-offload-tc.c: unsupported set action type)', 'skbedit');
        }
        break;
      case 'sample':
        // Without an IPFIX collector OVS emits no datapath action for sample(), and with one a sample action
        // that tc offload does not take (netdev-offload-tc.c 3.1: unsupported put action type).
        refuse('sample: OVS samples only to an IPFIX collector and cannot offload sampling (netdev-offload-tc.c: unsupported put action type)', 'sample');
        break;
      case 'mpls':
        if (a.op === 'push') {
          if (a.ttl === undefined || a.bos !== undefined || a.label === undefined) refuse('mpls push is offloaded with label and ttl given and bos left to the datapath', 'mpls');
          acts.push({ a: 'push_mpls', ethertype: a.protocol }, setField('mpls_label', a.label!), setField('mpls_tc', a.tc ?? 0), setField('mpls_ttl', a.ttl!));
        } else if (!mpls) refuse(`mpls ${a.op} needs a filter on an MPLS protocol (OpenFlow prerequisites of pop_mpls and the mpls_* fields)`, 'mpls');
        else if (a.op === 'pop') acts.push({ a: 'pop_mpls', ethertype: a.protocol });
        else if (a.op === 'modify') {
          if (a.bos !== undefined) refuse('mpls bos is read-only in OpenFlow', 'mpls');
          if (a.label !== undefined) acts.push(setField('mpls_label', a.label));
          if (a.tc !== undefined) acts.push(setField('mpls_tc', a.tc));
          if (a.ttl !== undefined) acts.push(setField('mpls_ttl', a.ttl));
        } else refuse(`mpls ${a.op}: OVS dec_mpls_ttl stops at ttl 1 where tc wraps`, 'mpls');
        did('rewrites the packet');
        break;
    }
    if (verdict(a.control, i)) return finish();
  }
  // The list ran out with pipe: tcf_action_exec returns PIPE, which continues into the stack.
  acts.push(slowPath(ctx, rule));
  handOff();
  return finish();

  function finish(): TranslatedActions {
    // OVS 3.1's tc offload binds the meter's police, whose conform verdict is pipe, and ends the filter with a
    // drop only when the flow has no action at all (lib/tc.c): a flow whose only datapath action is a meter
    // goes on past tc, misses the datapath and goes up to ovs-vswitchd, every conforming packet.
    if (acts.some((x) => x.a === 'meter') && acts.every((x) => x.a === 'meter' || REWRITES.has(x.a))) {
      refuse('police, then drop: OVS 3.1 cannot end a flow whose only datapath action is a meter in tc, so its conforming packets would go up to ovs-vswitchd', 'police');
    }
    const sideEffectThenSoftware = repeated;
    let variants = ruleVariants();
    let deferred: OfAction[] | undefined;
    if (deferring && !sideEffectThenSoftware) {
      // The copies leave the list; the rule's id and the pending bit go in reg13 for EMIT_TABLE.
      deferred = mirrorOuts;
      const copies = new Set(mirrorOuts);
      const pending = setField(VALUE_BITS_REG, (ctx.ruleId! * 0x10000 + PENDING_BIT) >>> 0, (PENDING_RULE_MASK | PENDING_BIT) >>> 0);
      variants = variants.map((v) => ({ ...v, actions: [pending, ...v.actions.filter((x) => !copies.has(x))] }));
    }
    if (saving && !sideEffectThenSoftware) variants = savingVariants(variants);
    if (ctx.pendingMirrors && rule.chain !== 0) variants = pendingVariants(variants);
    return { variants, ...(sideEffectThenSoftware ? { sideEffectThenSoftware } : {}), ...(saving && !sideEffectThenSoftware ? { saves } : {}), ...(deferred ? { deferred } : {}) };
  }

  /**
   * The rule under copies an earlier rule deferred (reg13 bit 15): where the path ends here in hardware they are
   * sent first, in the order software sends them; a rule that may go on after changing the packet, copying or
   * metering hands the packet off instead (software makes every copy again). A sure hand-off needs no second flow.
   */
  function pendingVariants(base: ActionVariant[]): ActionVariant[] {
    // A goto or continue to a table of a later chain or prio (not the hand-off table), or through ct(table=).
    // A bare `ct nat` counts as a change: on an established NATed connection it rewrites the packet.
    const last = acts.at(-1);
    const goesOn = ended === 'software' && ((last?.a === 'resubmit' && last.table !== HANDOFF_TABLE) || last?.a === 'ct');
    const meters = acts.some((x) => x.a === 'meter');
    const emits = ended === 'stop' && !meters;
    const handsOff = (ended === 'stop' && meters) || (goesOn && (acts.some(changesPacket) || mirrorOuts.length > 0));
    if (!emits && !handsOff) return base;
    const idle = mf(VALUE_BITS_REG, 0, PENDING_BIT), pending = mf(VALUE_BITS_REG, PENDING_BIT, PENDING_BIT);
    const out = base.map((v) => ({ ...v, when: [...v.when, idle] }));
    if (emits) for (const v of base) out.push({ when: [...v.when, pending], actions: [resubmit(EMIT_TABLE), ...v.actions], specific: v.specific });
    else out.push({ when: [pending], actions: [slowPath(ctx, rule)], specific: base.some((v) => v.specific) });
    return out;
  }

  /** The rule's flows before any saving: one, or one per PCP, or tc's wrapping ttl dec as three. */
  function ruleVariants(): ActionVariant[] {
    if (pcpSplit) {
      // The frame's own PCP, one flow per value (the tag-with-PCP form OVS's tc offload takes).
      return taggedAlts().map((when, p) => ({ when, actions: acts.map((x) => (x === PCP_PLACEHOLDER ? setField('vlan_pcp', p) : x)), specific: true }));
    }
    if (!ttlDec) return [{ when: [], actions: acts, specific: false }];
    // tc's ttl dec is an 8-bit add that wraps; OVS dec_ttl stops at ttl <= 1. Two exact flows cover those.
    const subst = (r: OfAction) => acts.map((x) => (x === TTLDEC_PLACEHOLDER ? r : x));
    return [
      { when: [mf('nw_ttl', 0)], actions: subst({ a: 'mod_nw_ttl', ttl: 255 }), specific: true },
      { when: [mf('nw_ttl', 1)], actions: subst({ a: 'mod_nw_ttl', ttl: 0 }), specific: true },
      { when: [], actions: subst({ a: 'dec_ttl' }), specific: false },
    ];
  }

  /**
   * Each of `base` once per combination of slots already taken by an earlier rule (reg15 bits): the first rule
   * to change a field saves it (its id in the slot's register, or the field's bits and reg13's bit), later ones
   * leave it, the original being the first's.
   */
  function savingVariants(base: ActionVariant[]): ActionVariant[] {
    const all = saves.reduce((m, s) => m | (1 << s.slot), 0);
    const variants: ActionVariant[] = [];
    // Chain 0 is entered with every slot free (no hand-off restores after a jump back to it: restoreOk).
    const first = rule.chain === 0;
    const vlanBit = first ? 0 : all & (1 << VLAN_SLOT);
    // Slots where an earlier rule's masked restore may not put back every bit this rule writes.
    const uncovered = first ? 0 : saves.reduce((m, s) => {
      const cover = ctx.restoreCover?.(s.slot);
      return cover !== undefined && (s.writes & ~cover) !== 0n ? m | (1 << s.slot) : m;
    }, 0);
    for (let taken = 0; taken <= (first ? 0 : all); taken++) {
      if ((taken & ~all) !== 0 || taken & vlanBit) continue;
      if (taken & uncovered) {
        // The restore of the rule that took the slot would leave this rule's bits written: hand off untouched.
        variants.push({ when: [mf(SAVED_BITS_REG, taken, all)], actions: [slowPath(ctx, rule)], specific: base.some((v) => v.specific) });
        continue;
      }
      const mine = all & ~taken;
      const save: OfAction[] = [];
      let copied = 0;
      for (const s of saves) {
        if (!(mine & (1 << s.slot))) continue;
        if (s.save) (save.push(...s.save), (copied |= 1 << s.slot));
        else save.push(setField(reg(s.slot), ctx.ruleId!));
      }
      if (copied) save.push(setField(VALUE_BITS_REG, copied, copied));
      if (mine) save.push(setField(SAVED_BITS_REG, mine, mine));
      for (const v of base) variants.push({ when: first ? v.when : [...v.when, mf(SAVED_BITS_REG, taken, all)], actions: [...save, ...v.actions], specific: v.specific });
    }
    // An earlier rule changed the tag stack: restores cannot stack, so the packet goes to software untouched by this rule.
    if (vlanBit) variants.push({ when: [mf(SAVED_BITS_REG, vlanBit, vlanBit)], actions: [slowPath(ctx, rule)], specific: base.some((v) => v.specific) });
    return variants;
  }
}

/** Stand-ins filled in by finish(): the frame's own PCP, and tc's wrapping ttl dec. */
const PCP_PLACEHOLDER: OfAction = { a: 'set_field', field: 'vlan_pcp', value: -1 };
const TTLDEC_PLACEHOLDER: OfAction = { a: 'dec_ttl' };
const CT_CLEAR: OfAction = { a: 'ct_clear' };

/** tc's ct nat as OVS's nat(): an address range's max only when it differs from its min (ovs-actions(7) nat). */
function ofNat(n: CtNat): OfNat {
  if (n.type === 'restore') return { type: 'restore' };
  const out: OfNat = { type: n.type };
  if (n.addrMin) out.min = ipToBytes(n.addrMin);
  if (n.addrMin && n.addrMax && n.addrMax !== n.addrMin) out.max = ipToBytes(n.addrMax);
  if (n.portMin !== undefined) {
    out.portMin = n.portMin;
    if (n.portMax !== undefined && n.portMax !== n.portMin) out.portMax = n.portMax;
  }
  return out;
}

/**
 * The OpenFlow meter a police action is: one drop band at its rate (bytes/s
 * or packets/s); the reason when no meter can be it; undefined for a police
 * without a rate, which meters nothing.
 */
export function policeMeter(a: PoliceAction): { spec: string } | { refusal: string } | undefined {
  if (a.peakrate || a.avrate) return { refusal: 'police peakrate/avrate have no meter equivalent' };
  if (!a.rate && !a.pktsPerSec) return undefined;
  if (a.exceed.kind !== 'drop') return { refusal: `police exceed verdict "${a.exceed.kind}": only drop maps to a meter band` };
  return {
    spec: a.pktsPerSec
      ? `pktps burst stats bands=type=drop rate=${a.pktsPerSec} burst_size=${a.pktBurst ?? 0}`
      : `kbps burst stats bands=type=drop rate=${Math.max(1, Math.ceil(((a.rate ?? 0) * 8) / 1000))} burst_size=${Math.max(1, Math.ceil(((a.burst ?? 0) * 8) / 1000))}`,
  };
}

/** A field's value or mask as one number, whatever its width (MACs pass 32 bits; IPv6 is bytes). */
const big = (v: FieldValue): bigint => (typeof v === 'number' ? BigInt(v) : v.reduce((n, b) => (n << 8n) | BigInt(b), 0n));
const bytesOf = (v: bigint, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => Number((v >> BigInt(8 * (n - 1 - i))) & 0xffn));

/**
 * The set that puts back the bits `op` writes of a field the match holds as
 * value/mask, when the match pins every one of them; undefined otherwise.
 * Unmasked when the op writes the whole field or the match pins all of it, else the masked set of just
 * those bits (the match may pin only them: a masked set's megaflow does).
 */
function putBack(slot: number, field: FieldName, width: number, value: FieldValue, mask: FieldValue, op: PeditOp, prereq: MatchField[]): Saved | undefined {
  const full = (1n << BigInt(8 * width)) - 1n;
  const written = writtenBits(op, width);
  if ((big(mask) & written) !== written) return undefined;
  const as = (x: bigint): FieldValue => (width > 6 ? bytesOf(x, width) : Number(x));
  // A whole field the match pins is put back whole: a later rule holding the same slot may write other bits of
  // it, which only this restore runs for (found by the property test: a /16 set, then a /32 set in chain 1).
  if ((big(mask) & full) === full) return { slot, restore: [setField(field, as(big(value) & full))], prereq, writes: written };
  return { slot, restore: [setField(field, as(big(value) & written), as(written))], prereq, writes: written, covers: written };
}

/** The bits of a `width`-byte field an op writes. */
const writtenBits = (op: PeditOp, width: number): bigint => (op.mask === undefined ? (1n << BigInt(8 * width)) - 1n : big(op.mask));

/** The rule's L3 protocol and the eth_type match a restore of an IP field needs (undefined: not IP). */
function ipPrereq(m: FlowerRule['match']): { l3: number | undefined; dl: MatchField[] | undefined } {
  const l3 = l3Protocol(m);
  return { l3, dl: l3 === EthP.IP ? [mf('eth_type', EthP.IP)] : l3 === EthP.IPV6 ? [mf('eth_type', EthP.IPV6)] : undefined };
}

/** A TCP/UDP port pedit's OpenFlow field and save slot (8/9 tcp src/dst, 10/11 udp src/dst). */
const portField = (op: PeditOp): FieldName => `${op.hdr as 'tcp' | 'udp'}_${op.field === 'sport' ? 'src' : 'dst'}`;
const portSlot = (op: PeditOp): number => (op.hdr === 'tcp' ? 8 : 10) + (op.field === 'sport' ? 0 : 1);

/**
 * The restore of one pedit field when the rule's match pins every bit the
 * pedit writes (the value those bits had is then known): OVS's own megaflows,
 * and so the tc rules a guest OVS offloads, match exactly what they rewrite,
 * a masked set only its bits (ofproto-dpif-xlate.c un-wildcards a set field
 * under its mask). Undefined: not restorable.
 */
function pinnedRestore(rule: FlowerRule, op: PeditOp): Saved | undefined {
  const m = rule.match;
  const { l3, dl } = ipPrereq(m);
  const f = `${op.hdr} ${op.field}`;
  if (op.op === 'set' || f === 'ip ttl' || f === 'ip6 hoplimit') {
    if (f === 'eth dst' && m.dstMac) return putBack(0, 'eth_dst', 6, macNum(m.dstMac.value), macNum(m.dstMac.mask), op, []);
    if (f === 'eth src' && m.srcMac) return putBack(1, 'eth_src', 6, macNum(m.srcMac.value), macNum(m.srcMac.mask), op, []);
    if (!dl) return undefined;
    const ip = op.field === 'src' ? m.srcIp : op.field === 'dst' ? m.dstIp : undefined;
    if ((f === 'ip src' || f === 'ip dst') && l3 === EthP.IP && ip) return putBack(f === 'ip src' ? 2 : 3, op.field === 'src' ? 'ip_src' : 'ip_dst', 4, ipv4Num(ip.value), ipv4Num(ip.mask), op, dl);
    if ((f === 'ip6 src' || f === 'ip6 dst') && l3 === EthP.IPV6 && ip) return putBack(f === 'ip6 src' ? 4 : 5, op.field === 'src' ? 'ipv6_src' : 'ipv6_dst', 16, ipv6ToBytes(ip.value), ipv6ToBytes(ip.mask), op, dl);
    if (f === 'ip tos' && l3 === EthP.IP && m.ipTos) {
      // Each of DSCP and ECN the op writes bits of must be pinned whole, and is put back whole.
      const w = op.mask === undefined ? 0xff : Number(op.mask);
      const pinned = m.ipTos.mask;
      if ((w & 0xfc && (pinned & 0xfc) !== 0xfc) || (w & 3 && (pinned & 3) !== 3)) return undefined;
      const restore = [...(w & 0xfc ? [setField('ip_dscp', m.ipTos.value >> 2)] : []), ...(w & 3 ? [setField('nw_ecn', m.ipTos.value & 3)] : [])];
      const covers = (w & 0xfc ? 0xfc : 0) | (w & 3 ? 3 : 0);
      return { slot: 6, restore, prereq: dl, writes: BigInt(w), ...(covers !== 0xff ? { covers: BigInt(covers) } : {}) };
    }
    if (((f === 'ip ttl' && l3 === EthP.IP) || (f === 'ip6 hoplimit' && l3 === EthP.IPV6)) && m.ipTtl?.mask === 0xff) return { slot: 7, restore: [{ a: 'mod_nw_ttl', ttl: m.ipTtl.value }], prereq: dl, writes: 0xffn };
    if ((op.hdr === 'tcp' || op.hdr === 'udp') && m.ipProto === (op.hdr === 'tcp' ? 6 : 17)) {
      const port = op.field === 'sport' ? m.srcPort : m.dstPort;
      const range = op.field === 'sport' ? m.srcPortRange : m.dstPortRange;
      if (port && !range) return putBack(portSlot(op), portField(op), 2, port.value, port.mask, op, [...dl, mf('nw_proto', m.ipProto!)]);
    }
  }
  return undefined;
}

/** A move in flow.ts's form, the one parse.ts reads a dump back as: zero offsets and a whole-source `bits` left out. */
const move = (src: FieldName, dst: FieldName, bits?: number, srcOfs?: number, dstOfs?: number): OfAction => ({
  a: 'move',
  src,
  dst,
  ...(srcOfs ? { srcOfs } : {}),
  ...(dstOfs ? { dstOfs } : {}),
  ...(bits !== undefined && (srcOfs || bits !== fieldByName(src)?.bits) ? { bits } : {}),
});

/**
 * The save of a field the match does not pin: its bits are copied into
 * reg<slot> (and for a MAC, a part of metadata) before the rule rewrites it
 * (ovs-actions(7) move), and moved back by the hand-off. Reading the field
 * makes OVS's megaflow match it exactly (ofproto-dpif-xlate.c un-wildcards a
 * move's source), so the datapath flow of a miss still carries no net
 * rewrite. IPv6 addresses have no 128 bits left: undefined.
 */
function savedCopy(rule: FlowerRule, op: PeditOp): Saved | undefined {
  const m = rule.match;
  const f = `${op.hdr} ${op.field}`;
  if (f === 'eth dst' || f === 'eth src') {
    // 48 bits: the low 32 in the slot's register, the high 16 in a quarter of OpenFlow's metadata (dst 0-15, src 16-31).
    const [field, slot, at]: [FieldName, number, number] = f === 'eth dst' ? ['eth_dst', 0, 0] : ['eth_src', 1, 16];
    return {
      slot,
      save: [move(field, reg(slot), 32), move(field, 'metadata', 16, 32, at)],
      restore: [move(reg(slot), field, 32), move('metadata', field, 16, at, 32)],
      prereq: [],
      writes: writtenBits(op, 6),
    };
  }
  const { l3, dl } = ipPrereq(m);
  if (!dl) return undefined;
  const whole = (slot: number, field: FieldName, width: number, prereq: MatchField[]): Saved => ({ slot, save: [move(field, reg(slot))], restore: [move(reg(slot), field, width)], prereq, writes: writtenBits(op, width / 8) });
  if ((f === 'ip src' || f === 'ip dst') && l3 === EthP.IP) return whole(f === 'ip src' ? 2 : 3, op.field === 'src' ? 'ip_src' : 'ip_dst', 32, dl);
  // DSCP (6 bits) and ECN (2 bits) are two OpenFlow fields: both go in reg6, DSCP low.
  if (f === 'ip tos' && l3 === EthP.IP) return { slot: 6, save: [move('ip_dscp', reg(6)), move('nw_ecn', reg(6), undefined, 0, 6)], restore: [move(reg(6), 'ip_dscp', 6), move(reg(6), 'nw_ecn', 2, 6)], prereq: dl, writes: writtenBits(op, 1) };
  if ((f === 'ip ttl' && l3 === EthP.IP) || (f === 'ip6 hoplimit' && l3 === EthP.IPV6)) return whole(7, 'nw_ttl', 8, dl);
  // OVS refuses a port as a move's source under a match that may pin later fragments ("source field udp_dst
  // lacks correct prerequisites", found by the property test): a filter on ip_flags keeps the pinned-only rule.
  if ((op.hdr === 'tcp' || op.hdr === 'udp') && m.ipProto === (op.hdr === 'tcp' ? 6 : 17) && !m.ipFlags) {
    return whole(portSlot(op), portField(op), 16, [...dl, mf('nw_proto', m.ipProto!)]);
  }
  return undefined;
}

export type { OfMeter };
