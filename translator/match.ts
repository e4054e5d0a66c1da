// A flower match as OpenFlow matches (ovs-ofctl syntax, ovs-fields(7)). One
// rule may need several flows (ranges, unmaskable masks, ip_flags
// nofirstfrag): the result is the cross product of per-key alternatives,
// capped. Keys OpenFlow cannot express exactly are refused with EOPNOTSUPP.
import { hexToBytes, ipFamily, ipv6ToBytes, maskPrefixLen } from '../rules/addr.js';
import { VpfError } from '../rules/errors.js';
import { refuse } from './refuse.js';
import type { FlowerMatch, FlowerRule, Masked } from '../rules/model.js';
import { CtState, EthP, IpProto } from '../rules/model.js';
import { l3Protocol } from '../rules/validate.js';
import { matchText, type FieldName, type MatchField } from '../ovs/openflow/flow.js';
import { enumerateMasked, rangeToPrefixes } from './expand.js';

export interface MatchContext {
  /** Maps the guest's ct zone to the host zone reserved for this VM. */
  zone(guestZone: number): number;
  /** Flows one rule may expand to. */
  maxFlowsPerRule: number;
  /**
   * The VM's declared outer TPID (0x8100 or 0x88a8; docs/mapping.md, VLAN
   * matches): with it, filters on a VLAN protocol are exact; without, trapped.
   */
  outerTpid?: number;
}

/**
 * 'exact' selects exactly the rule's packets and refuses what OpenFlow cannot
 * say; 'superset' (trap flows) drops those keys instead, so it selects at
 * least the rule's packets and as few others as OpenFlow allows.
 */
export type MatchMode = 'exact' | 'superset';


/** A match with every key present (most undefined): one hidden class for all rules. */
const blankMatch = (): FlowerMatch => ({
  indev: undefined,
  ethType: undefined,
  dstMac: undefined,
  srcMac: undefined,
  numOfVlans: undefined,
  vlanId: undefined,
  vlanPrio: undefined,
  vlanEthType: undefined,
  cvlanId: undefined,
  cvlanPrio: undefined,
  cvlanEthType: undefined,
  mplsLabel: undefined,
  mplsTc: undefined,
  mplsBos: undefined,
  mplsTtl: undefined,
  ipProto: undefined,
  ipTos: undefined,
  ipTtl: undefined,
  srcIp: undefined,
  dstIp: undefined,
  srcPort: undefined,
  dstPort: undefined,
  srcPortRange: undefined,
  dstPortRange: undefined,
  tcpFlags: undefined,
  icmpType: undefined,
  icmpCode: undefined,
  arpSip: undefined,
  arpTip: undefined,
  arpOp: undefined,
  arpSha: undefined,
  arpTha: undefined,
  ipFlags: undefined,
  ctState: undefined,
  ctZone: undefined,
  ctMark: undefined,
  ctLabel: undefined,
  encKeyId: undefined,
  encSrcIp: undefined,
  encDstIp: undefined,
  encDstPort: undefined,
  encTos: undefined,
  encTtl: undefined,
  encOpts: undefined,
});

/**
 * The rule as the translators read it: its match copied into one fixed shape.
 * Rules from the codecs each carry only their own keys, so every match has its
 * own hidden class and each of the ~40 key reads per rule missed V8's inline
 * caches (megamorphic): about 6 us per rule, most of a translation.
 */
export function ruleView(rule: FlowerRule): FlowerRule {
  const m = blankMatch() as Record<string, unknown>;
  const src = rule.match as Record<string, unknown>;
  for (const k in src) m[k] = src[k];
  return { dev: rule.dev, direction: rule.direction, chain: rule.chain, prio: rule.prio, handle: rule.handle, protocol: rule.protocol, flags: rule.flags, match: m as FlowerMatch, actions: rule.actions };
}

/** One match field (mask only when partial: the translators never print a full mask). */
export const mf = (field: FieldName, value: number | Uint8Array, mask?: number | Uint8Array): MatchField => ({ field, value, mask });

/** A MAC (colon form, rules/addr.ts) as its 48-bit integer. */
export function macNum(s: string): number {
  let n = 0, part = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) {
      n = n * 256 + part;
      part = 0;
    } else part = part * 16 + (c <= 57 ? c - 48 : (c | 0x20) - 87);
  }
  return n * 256 + part;
}

/** A canonical dotted quad as its 32-bit integer. */
export function ipv4Num(s: string): number {
  let n = 0, part = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + part;
      part = 0;
    } else part = part * 10 + c - 48;
  }
  return n * 256 + part;
}

/*
 * VLAN TCI forms, chosen for what OVS 3.1's tc offload takes from a datapath
 * flow's mask (netdev-offload-tc.c netdev_tc_flow_put): "no tag" only as
 * 0x0000/0xffff, a tag only with the CFI/present bit and a full VID and/or
 * full PCP mask; anything else, the present bit alone included, is a "partial
 * mask" it refuses without a log line.
 */
export const UNTAGGED: MatchField = mf('vlan_tci', 0, 0xffff);
const tci = (v: number, m: number): MatchField[] => [mf('vlan_tci', 0x1000 | v, m)];
const ANY_PCP: MatchField[][] = Array.from({ length: 8 }, (_, p) => tci(p << 13, 0xf000));
/** A tag (any TPID: OpenFlow cannot see it), with its VID and PCP when given; else one flow per PCP. */
export function taggedAlts(vid?: number, pcp?: number): MatchField[][] {
  if (vid !== undefined && pcp !== undefined) return [tci((pcp << 13) | vid, 0xffff)];
  if (vid !== undefined) return [tci(vid, 0x1fff)];
  if (pcp !== undefined) return [tci(pcp << 13, 0xf000)];
  return ANY_PCP;
}

// `>>> 0`: JavaScript's & is signed, and a 32-bit field (ct_mark) with bit 31 set would come out negative.
const masked = (field: FieldName, v: Masked<number>, full: number): MatchField => (v.mask === full ? mf(field, v.value) : mf(field, (v.value & v.mask) >>> 0, v.mask));
const FULL_MAC = 'ff:ff:ff:ff:ff:ff';
const maskedMac = (field: FieldName, v: Masked<string>): MatchField => (v.mask === FULL_MAC ? mf(field, macNum(v.value)) : mf(field, macNum(v.value), macNum(v.mask)));
const maskedIpv4 = (field: FieldName, v: Masked<string>): MatchField => (v.mask === '255.255.255.255' ? mf(field, ipv4Num(v.value)) : mf(field, ipv4Num(v.value), ipv4Num(v.mask)));

/** flower ct_state bits -> OVS's (OVS swaps trk and rpl: ovs-fields(7) ct_state). */
const CT_BITS: [number, number][] = [
  [CtState.NEW, 0x01], [CtState.ESTABLISHED, 0x02], [CtState.RELATED, 0x04],
  [CtState.REPLY, 0x08], [CtState.INVALID, 0x10], [CtState.TRACKED, 0x20],
];
export function ovsCtState(v: Masked<number>): MatchField {
  let value = 0, mask = 0;
  for (const [b, o] of CT_BITS) {
    if (!(v.mask & b)) continue;
    mask |= o;
    if (v.value & b) value |= o;
  }
  return mf('ct_state', value, mask);
}

/** ip_frag as OVS lays it out (value, mask): ANY = 1, LATER = 2 (meta-flow.h FLOW_NW_FRAG_*). */
export const Frag = { NO: [0, 3], YES: [1, 1], FIRST: [1, 3], LATER: [3, 3] } as const;
const frag = (f: readonly [number, number]): MatchField => mf('ip_frag', f[0], f[1]);
const isFrag = (x: MatchField, f: readonly [number, number]) => x.field === 'ip_frag' && x.value === f[0] && x.mask === f[1];

/** The protocol gate: flower's tcf_proto protocol as OpenFlow sees it (skb_protocol: untagged for non-VLAN protocols). */
function protocolGate(rule: FlowerRule, mode: MatchMode, ctx: MatchContext): Alt {
  const p = rule.protocol;
  const m = rule.match;
  if (p === EthP.ALL) {
    const n = m.numOfVlans;
    if (n === undefined) return [[]];
    if (n === 0) return [[UNTAGGED]];
    if (mode === 'exact' && oneTagAnyTpid(m)) {
      // flower counts 802.1Q and 802.1ad tags alike, and OVS parses both: a tag, then (vlan-limit 1) dl_type is what
      // follows it, a TPID exactly when a second tag does (those frames: multiTagged).
      const inner = m.vlanEthType !== undefined ? [mf('eth_type', m.vlanEthType)] : [];
      return taggedAlts(m.vlanId, m.vlanPrio).map((a) => [...a, ...inner]);
    }
    if (mode === 'exact') return refuse('num_of_vlans >= 2: with vlan-limit 1 OpenFlow sees two VLAN tags and three alike (ovs-fields(7) vlan_tci)', 'num_of_vlans');
    return taggedAlts(m.vlanId, m.vlanPrio);
  }
  if (p === EthP.VLAN_8021Q || p === EthP.VLAN_8021AD) {
    if (mode === 'exact') return declaredVlanGate(rule, ctx.outerTpid);
    // With vlan-limit 1, dl_type is the type after the outer tag: vlan_ethtype's for one tag (deeperTags covers two).
    const inner = m.vlanEthType !== undefined && m.vlanEthType !== EthP.VLAN_8021Q && m.vlanEthType !== EthP.VLAN_8021AD ? [mf('eth_type', m.vlanEthType)] : [];
    return taggedAlts(m.vlanId, m.vlanPrio).map((a) => [...a, ...inner]);
  }
  return untaggedGate(p);
}

const isTpid = (t: number | undefined) => t === EthP.VLAN_8021Q || t === EthP.VLAN_8021AD;

/** `protocol all` with `num_of_vlans 1`: the one tag's VID/PCP and a non-TPID vlan_ethtype are OpenFlow's to state, of either TPID. */
const oneTagAnyTpid = (m: FlowerRule['match']) =>
  m.numOfVlans === 1 && !isTpid(m.vlanEthType) && m.cvlanId === undefined && m.cvlanPrio === undefined && m.cvlanEthType === undefined;

/**
 * Frames of two or more tags that a `protocol all` filter on `num_of_vlans 1`
 * without a vlan_ethtype would take in OpenFlow (its flows see a tag): they
 * carry a TPID in dl_type, and go to the guest's software at the rule's place
 * instead. `matches` are the rule's own; the traps add that dl_type.
 */
export function multiTagged(rule: FlowerRule, matches: MatchField[][]): MatchField[][] {
  if (rule.protocol !== EthP.ALL || !oneTagAnyTpid(rule.match) || rule.match.vlanEthType !== undefined) return [];
  return matches.flatMap((m) => [EthP.VLAN_8021Q, EthP.VLAN_8021AD].map((t) => [...m, mf('eth_type', t)]));
}

/**
 * A filter on a VLAN protocol under the VM's declared outer TPID: every tagged
 * frame has that TPID outside, so the protocol is a tag test, and with OVS's
 * vlan-limit 1 `dl_type` is what follows the outer tag. A TPID vlan_ethtype is
 * flower's second tag's TPID (cvlan.vlan_tpid): exactly dl_type. Any other
 * vlan_ethtype is flower's n_proto, the type after every tag: dl_type for one
 * tag, unseen by OpenFlow under two (deeperTags traps those). The other
 * protocol matches no frame: no flow.
 */
function declaredVlanGate(rule: FlowerRule, declared: number | undefined): Alt {
  const m = rule.match;
  if (declared === undefined) {
    return refuse('protocol 802.1Q/802.1ad: OpenFlow cannot match a VLAN TPID (ovs-fields(7): "no version of OpenFlow provides a way to match on the TPID"), and this VM declares no outer TPID (vpfctl vm add --outer-tpid; docs/mapping.md, VLAN matches)', 'protocol');
  }
  if (m.cvlanId !== undefined || m.cvlanPrio !== undefined || m.cvlanEthType !== undefined) {
    return refuse('cvlan_id/cvlan_prio/cvlan_ethtype: OVS parses one VLAN tag (vlan-limit 1), so the inner tag cannot be matched', 'cvlan_id');
  }
  const n = m.numOfVlans;
  // Zero tags under a VLAN protocol selects nothing; one tag is what a non-TPID vlan_ethtype already says.
  if (n === 0) return [];
  if (n !== undefined && !(n === 1 && m.vlanEthType !== undefined && !isTpid(m.vlanEthType))) {
    return refuse('num_of_vlans: with vlan-limit 1 OpenFlow sees two VLAN tags and three alike (dl_type is the second TPID)', 'num_of_vlans');
  }
  if (rule.protocol !== declared) return [];
  const inner = m.vlanEthType !== undefined ? [mf('eth_type', m.vlanEthType)] : [];
  return taggedAlts(m.vlanId, m.vlanPrio).map((a) => [...a, ...inner]);
}

/**
 * Frames with two or more tags that a filter on a VLAN protocol with a
 * non-TPID vlan_ethtype may take: flower reads that type after every tag
 * (n_proto), OpenFlow sees only the second tag's TPID, and none of the L3
 * keys behind it. They go to the guest's software at the rule's place,
 * whether the rule is offloaded (its one-tag frames stay in hardware) or
 * trapped (its trap, by the rule's keys, would miss them). On a VM with a
 * declared outer TPID, a filter on the other VLAN protocol takes no frame.
 */
export function deeperTags(rule: FlowerRule, ctx: MatchContext): MatchField[][] {
  const m = rule.match;
  if (!isTpid(rule.protocol) || (ctx.outerTpid !== undefined && rule.protocol !== ctx.outerTpid)) return [];
  if (m.vlanEthType === undefined || isTpid(m.vlanEthType) || m.numOfVlans !== undefined) return [];
  return taggedAlts(m.vlanId, m.vlanPrio).flatMap((a) => [EthP.VLAN_8021Q, EthP.VLAN_8021AD].map((t) => [...a, mf('eth_type', t)]));
}

// The gate of an untagged protocol, one per protocol (values are never changed once made).
const GATES = new Map<number, Alt>();
function untaggedGate(p: number): Alt {
  let g = GATES.get(p);
  if (!g) GATES.set(p, (g = [[mf('eth_type', p), UNTAGGED]]));
  return g;
}

/** Alternatives for one key: each entry is a list of match fields; the flow set is their cross product. */
type Alt = MatchField[][];

function l4Prefix(m: FlowerMatch): 'tcp' | 'udp' | 'sctp' | undefined {
  if (m.ipProto === IpProto.TCP) return 'tcp';
  if (m.ipProto === IpProto.UDP) return 'udp';
  if (m.ipProto === IpProto.SCTP) return 'sctp';
  return undefined;
}

function tosAlts(v: Masked<number>, cap: number): Alt {
  const dscp = v.mask & 0xfc, ecn = v.mask & 0x03;
  const ok = (dscp === 0 || dscp === 0xfc) && (ecn === 0 || ecn === 0x03);
  if (ok) {
    const f: MatchField[] = [];
    if (dscp) f.push(mf('ip_dscp', (v.value & 0xfc) >> 2));
    if (ecn) f.push(mf('nw_ecn', v.value & 3));
    return [f];
  }
  const vals = enumerateMasked(v.value, v.mask, 8, cap);
  if (!vals) return refuse('ip_tos mask needs too many flows', 'ip_tos');
  return vals.map((x) => [mf('ip_dscp', x >> 2), mf('nw_ecn', x & 3)]);
}

function unmaskable(field: FieldName, v: Masked<number>, bits: number, cap: number, attr: string): Alt {
  const full = 2 ** bits - 1;
  if ((v.mask & full) === full) return [[mf(field, v.value)]];
  if ((v.mask & full) === 0) return [[]];
  const vals = enumerateMasked(v.value, v.mask, bits, cap);
  if (!vals) return refuse(`${attr} mask 0x${v.mask.toString(16)} would need more than ${cap} flows (OpenFlow cannot mask ${field})`, attr);
  return vals.map((x) => [mf(field, x)]);
}

function ipField(key: Masked<string>, f4: FieldName, f6: FieldName): MatchField {
  if (ipFamily(key.value) !== 6) return maskedIpv4(f4, key);
  const mask = ipv6ToBytes(key.mask);
  return maskPrefixLen(mask) === 128 ? mf(f6, ipv6ToBytes(key.value)) : mf(f6, ipv6ToBytes(key.value), mask);
}

/** ip_flags -> nw_frag (flower: bit 0 is-fragment, bit 1 first-fragment; docs/mapping.md). */
function fragAlts(v: Masked<number>): Alt {
  const isf = v.mask & 1 ? (v.value & 1 ? 'yes' : 'no') : 'any';
  const first = v.mask & 2 ? (v.value & 2 ? 'yes' : 'no') : 'any';
  if (isf === 'no') return first === 'yes' ? [] : [[frag(Frag.NO)]]; // nofrag/firstfrag matches nothing
  if (isf === 'yes') return [[frag(first === 'yes' ? Frag.FIRST : first === 'no' ? Frag.LATER : Frag.YES)]];
  if (first === 'yes') return [[frag(Frag.FIRST)]];
  if (first === 'no') return [[frag(Frag.NO)], [frag(Frag.LATER)]];
  return [[]];
}

/**
 * All OpenFlow matches (without in_port) that together select exactly what
 * the rule's key selects, or in 'superset' mode at least that.
 */
export function translateMatch(rule: FlowerRule, ctx: MatchContext, mode: MatchMode = 'exact'): MatchField[][] {
  const m = rule.match;
  const cap = ctx.maxFlowsPerRule;
  const alts: Alt[] = [protocolGate(rule, mode, ctx)];
  // Under a declared outer TPID the gate states the VLAN keys of a VLAN protocol exactly (or refused them).
  const vlanInGate = mode === 'exact' && ((ctx.outerTpid !== undefined && isTpid(rule.protocol)) || (rule.protocol === EthP.ALL && oneTagAnyTpid(m)));
  const fixed: MatchField[] = [];
  // A key OpenFlow cannot state: refused when exact, no constraint in a superset.
  const inexact = (msg: string, attr: string): Alt => (mode === 'exact' ? refuse(msg, attr) : [[]]);
  if (m.indev !== undefined && m.indev !== rule.dev) return []; // skb_iif is always the representor itself here
  if (!vlanInGate && (m.vlanId !== undefined || m.vlanPrio !== undefined || m.vlanEthType !== undefined || m.cvlanId !== undefined || m.cvlanPrio !== undefined || m.cvlanEthType !== undefined)) {
    // In a superset the gate already holds the outer VID/PCP; cvlan keys are dropped.
    inexact('vlan keys: OpenFlow cannot match the VLAN TPID flower compares', 'vlan_id');
  }
  if (m.encKeyId !== undefined || m.encSrcIp || m.encDstIp || m.encDstPort || m.encTos || m.encTtl || m.encOpts) {
    inexact('tunnel keys (enc_*) are not offloaded yet: tunnels need per-VM tunnel ports (a later design)', 'enc_key_id');
  }
  if (m.dstMac) fixed.push(maskedMac('eth_dst', m.dstMac));
  if (m.srcMac) fixed.push(maskedMac('eth_src', m.srcMac));
  const l3 = l3Protocol(m);
  if (m.mplsLabel !== undefined) fixed.push(mf('mpls_label', m.mplsLabel));
  if (m.mplsTc !== undefined) fixed.push(mf('mpls_tc', m.mplsTc));
  if (m.mplsBos !== undefined) fixed.push(mf('mpls_bos', m.mplsBos));
  if (m.mplsTtl !== undefined) fixed.push(mf('mpls_ttl', m.mplsTtl));
  if (m.ipProto !== undefined) fixed.push(mf('nw_proto', m.ipProto));
  // A key that would need too many flows is no constraint in a superset.
  const orAny = (f: () => Alt): Alt => {
    try {
      return f();
    } catch (e) {
      if (mode === 'exact' || !(e instanceof VpfError)) throw e;
      return [[]];
    }
  };
  if (m.ipTos) alts.push(orAny(() => tosAlts(m.ipTos!, cap)));
  if (m.ipTtl) alts.push(orAny(() => unmaskable('nw_ttl', m.ipTtl!, 8, cap, 'ip_ttl')));
  if (m.srcIp) fixed.push(ipField(m.srcIp, 'ip_src', 'ipv6_src'));
  if (m.dstIp) fixed.push(ipField(m.dstIp, 'ip_dst', 'ipv6_dst'));
  const l4 = l4Prefix(m);
  if (l4) {
    const src = `${l4}_src` as const, dst = `${l4}_dst` as const;
    if (m.srcPort) fixed.push(masked(src, m.srcPort, 0xffff));
    if (m.dstPort) fixed.push(masked(dst, m.dstPort, 0xffff));
    if (m.srcPortRange) alts.push(rangeToPrefixes(m.srcPortRange.min, m.srcPortRange.max).map((p) => [masked(src, p, 0xffff)]));
    if (m.dstPortRange) alts.push(rangeToPrefixes(m.dstPortRange.min, m.dstPortRange.max).map((p) => [masked(dst, p, 0xffff)]));
  }
  if (m.tcpFlags) fixed.push(masked('tcp_flags', m.tcpFlags, 0xfff));
  const six = m.ipProto === IpProto.ICMPV6;
  if (m.icmpType) alts.push(orAny(() => unmaskable(six ? 'icmpv6_type' : 'icmp_type', m.icmpType!, 8, cap, 'type')));
  if (m.icmpCode) alts.push(orAny(() => unmaskable(six ? 'icmpv6_code' : 'icmp_code', m.icmpCode!, 8, cap, 'code')));
  if (m.arpSip) fixed.push(maskedIpv4('arp_spa', m.arpSip));
  if (m.arpTip) fixed.push(maskedIpv4('arp_tpa', m.arpTip));
  if (m.arpOp) alts.push(orAny(() => unmaskable('arp_op', m.arpOp!, 8, cap, 'arp_op')));
  if (m.arpSha) fixed.push(maskedMac('arp_sha', m.arpSha));
  if (m.arpTha) fixed.push(maskedMac('arp_tha', m.arpTha));
  if (m.ipFlags) {
    if (l3 !== EthP.IP && l3 !== EthP.IPV6) alts.push(inexact('ip_flags on a filter that is not protocol ip/ipv6 also matches every non-IP frame, which OpenFlow cannot say', 'ip_flags'));
    else alts.push(fragAlts(m.ipFlags));
  }
  if (m.ctState) fixed.push(ovsCtState(m.ctState));
  if (m.ctZone) {
    if (m.ctZone.mask !== 0xffff) inexact('a masked ct_zone cannot be offloaded: zones are remapped per VM', 'ct_zone');
    else fixed.push(mf('ct_zone', ctx.zone(m.ctZone.value)));
  }
  if (m.ctMark) fixed.push(masked('ct_mark', m.ctMark, 0xffffffff));
  if (m.ctLabel) fixed.push(m.ctLabel.mask === 'f'.repeat(32) ? mf('ct_label', hexToBytes(m.ctLabel.value)) : mf('ct_label', hexToBytes(m.ctLabel.value), hexToBytes(m.ctLabel.mask)));
  // Cross product, capped.
  let flows: MatchField[][] = [[]];
  for (const a of alts) {
    if (a.length === 1 && a[0]!.length === 0) continue;
    const next: MatchField[][] = [];
    for (const f of flows) for (const x of a) next.push(f.length ? concat(f, x) : x);
    flows = next;
    if (flows.length > cap) refuse(`the rule needs more than ${cap} OpenFlow flows (ranges and masks multiply)`, 'match');
  }
  const out: MatchField[][] = [];
  for (const f of flows) {
    const full = fixed.length ? concat(f, fixed) : f;
    if (full.some((x) => isFrag(x, Frag.LATER))) out.push(...laterFragment(full));
    else out.push(full);
  }
  return out;
}

/** a then b in one exact-size array. */
function concat(a: MatchField[], b: MatchField[]): MatchField[] {
  const out = new Array<MatchField>(a.length + b.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]!;
  for (let i = 0; i < b.length; i++) out[a.length + i] = b[i]!;
  return out;
}

const L4_FIELDS = new Set<FieldName>(['tcp_src', 'tcp_dst', 'udp_src', 'udp_dst', 'sctp_src', 'sctp_dst', 'tcp_flags', 'icmp_type', 'icmp_code', 'icmpv6_type', 'icmpv6_code']);

/**
 * Later fragments carry no L4 header: OVS refuses L4 fields beside
 * nw_frag=later (OFPBMC_BAD_PREREQ), and flower dissects them as 0. So an L4
 * key that selects 0 is no constraint there, and any other makes the piece
 * match nothing.
 */
function laterFragment(flow: MatchField[]): MatchField[][] {
  if (!flow.some((x) => isFrag(x, Frag.LATER))) return [flow];
  const out: MatchField[] = [];
  for (const f of flow) {
    if (!L4_FIELDS.has(f.field)) {
      out.push(f);
      continue;
    }
    if ((f.value as number) & ((f.mask as number | undefined) ?? 0xffff)) return [];
  }
  return [out];
}

/**
 * What a trap flow of a rule that is not offloaded takes: the rule's match as
 * exactly as OpenFlow says it (keys it cannot say dropped), or, when even that
 * needs too many flows, the rule's protocol alone.
 */
export function trapMatches(rule: FlowerRule, ctx: MatchContext): MatchField[][] {
  try {
    return translateMatch(rule, ctx, 'superset');
  } catch (e) {
    if (!(e instanceof VpfError)) throw e;
    const p = rule.protocol;
    if (p === EthP.ALL) return [[]];
    if (p === EthP.VLAN_8021Q || p === EthP.VLAN_8021AD) return taggedAlts();
    return untaggedGate(p);
  }
}

/**
 * IPv6 later fragments: OVS reports nw_proto 44 for them where flower keeps
 * the upper protocol (P4), so a rule with ip_proto misses them in OpenFlow.
 * These matches take the later fragments each of `matches` would have taken
 * but for nw_proto (L4 keys as laterFragment treats them); they go to software.
 */
export function ipv6LaterFragments(rule: FlowerRule, matches: MatchField[][]): MatchField[][] {
  if (rule.match.ipProto === undefined || l3Protocol(rule.match) !== EthP.IPV6) return [];
  const out: MatchField[][] = [];
  const seen = new Set<string>();
  for (const m of matches) {
    if (m.some((f) => f.field === 'ip_frag' && !isFrag(f, Frag.LATER) && !isFrag(f, Frag.YES))) continue;
    for (const piece of laterFragment([...m.filter((f) => f.field !== 'nw_proto' && f.field !== 'ip_frag'), frag(Frag.LATER)])) {
      const k = matchText(piece);
      if (!seen.has(k)) out.push(piece);
      seen.add(k);
    }
  }
  return out;
}
