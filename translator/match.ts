// A flower match as OpenFlow matches (ovs-ofctl syntax, ovs-fields(7)). One
// rule may need several flows (ranges, unmaskable masks, ip_flags
// nofirstfrag): the result is the cross product of per-key alternatives,
// capped. Keys OpenFlow cannot express exactly are refused with EOPNOTSUPP.
import { ipFamily, ipToBytes, maskPrefixLen } from '../rules/addr.js';
import { Errno, VpfError } from '../rules/errors.js';
import type { FlowerMatch, FlowerRule, Masked } from '../rules/model.js';
import { CtState, EthP, IpProto } from '../rules/model.js';
import { l3Protocol } from '../rules/validate.js';
import { enumerateMasked, rangeToPrefixes } from './expand.js';

export interface MatchContext {
  /** Maps the guest's ct zone to the host zone reserved for this VM. */
  zone(guestZone: number): number;
  /** Flows one rule may expand to. */
  maxFlowsPerRule: number;
}

/**
 * 'exact' selects exactly the rule's packets and refuses what OpenFlow cannot
 * say; 'superset' (trap flows) drops those keys instead, so it selects at
 * least the rule's packets and as few others as OpenFlow allows.
 */
export type MatchMode = 'exact' | 'superset';

const refuse = (msg: string, attr?: string): never => {
  throw new VpfError(Errno.EOPNOTSUPP, msg, attr);
};

/*
 * VLAN TCI forms, chosen for what OVS 3.1's tc offload takes from a datapath
 * flow's mask (netdev-offload-tc.c netdev_tc_flow_put): "no tag" only as
 * 0x0000/0xffff, a tag only with the CFI/present bit and a full VID and/or
 * full PCP mask; anything else, the present bit alone included, is a "partial
 * mask" it refuses without a log line.
 */
export const UNTAGGED = 'vlan_tci=0x0000/0xffff';
/** A tag (any TPID: OpenFlow cannot see it), with its VID and PCP when given; else one flow per PCP. */
export function taggedAlts(vid?: number, pcp?: number): string[][] {
  const tci = (v: number, m: number) => [`vlan_tci=${hex(0x1000 | v)}/${hex(m)}`];
  if (vid !== undefined && pcp !== undefined) return [tci((pcp << 13) | vid, 0xffff)];
  if (vid !== undefined) return [tci(vid, 0x1fff)];
  if (pcp !== undefined) return [tci(pcp << 13, 0xf000)];
  return Array.from({ length: 8 }, (_, p) => tci(p << 13, 0xf000));
}

const hex = (n: number) => `0x${n.toString(16)}`;
// `>>> 0`: JavaScript's & is signed, and a 32-bit field (ct_mark) with bit 31 set would print negative.
const masked = (field: string, v: Masked<number>, full: number) => (v.mask === full ? `${field}=${v.value}` : `${field}=${hex((v.value & v.mask) >>> 0)}/${hex(v.mask)}`);
const maskedAddr = (field: string, v: Masked<string>, full: string) => (v.mask === full ? `${field}=${v.value}` : `${field}=${v.value}/${v.mask}`);

/** flower ct_state bits -> OVS names (OVS swaps trk and rpl: ovs-fields(7) ct_state). */
const CT_NAMES: [number, string][] = [
  [CtState.NEW, 'new'], [CtState.ESTABLISHED, 'est'], [CtState.RELATED, 'rel'],
  [CtState.REPLY, 'rpl'], [CtState.INVALID, 'inv'], [CtState.TRACKED, 'trk'],
];
export function ovsCtState(v: Masked<number>): string {
  return CT_NAMES.filter(([b]) => v.mask & b).map(([b, n]) => (v.value & b ? '+' : '-') + n).join('');
}

/** The protocol gate: flower's tcf_proto protocol as OpenFlow sees it (skb_protocol: untagged for non-VLAN protocols). */
function protocolGate(rule: FlowerRule, mode: MatchMode): Alt {
  const p = rule.protocol;
  const m = rule.match;
  if (p === EthP.ALL) {
    const n = m.numOfVlans;
    if (n === undefined) return [[]];
    if (n === 0) return [[UNTAGGED]];
    if (mode === 'exact') return refuse('num_of_vlans >= 1: OpenFlow cannot count VLAN tags nor tell their TPIDs apart (ovs-fields(7) vlan_tci)', 'num_of_vlans');
    return taggedAlts(m.vlanId, m.vlanPrio);
  }
  if (p === EthP.VLAN_8021Q || p === EthP.VLAN_8021AD) {
    if (mode === 'exact') {
      return refuse('protocol 802.1Q/802.1ad: OpenFlow cannot match a VLAN TPID (ovs-fields(7): "no version of OpenFlow provides a way to match on the TPID"), so such a filter cannot be offloaded exactly', 'protocol');
    }
    // With vlan-limit 1, dl_type is the type after the outer tag: exact for vlan_ethtype unless that is a TPID itself.
    const inner = m.vlanEthType !== undefined && m.vlanEthType !== EthP.VLAN_8021Q && m.vlanEthType !== EthP.VLAN_8021AD ? [`dl_type=${hex(m.vlanEthType)}`] : [];
    return taggedAlts(m.vlanId, m.vlanPrio).map((a) => [...a, ...inner]);
  }
  return [[`dl_type=${hex(p)}`, UNTAGGED]];
}

/** Alternatives for one key: each entry is a list of match fields; the flow set is their cross product. */
type Alt = string[][];

function l4Prefix(m: FlowerMatch): string | undefined {
  if (m.ipProto === IpProto.TCP) return 'tcp';
  if (m.ipProto === IpProto.UDP) return 'udp';
  if (m.ipProto === IpProto.SCTP) return 'sctp';
  return undefined;
}

function tosAlts(v: Masked<number>, cap: number): Alt {
  const dscp = v.mask & 0xfc, ecn = v.mask & 0x03;
  const ok = (dscp === 0 || dscp === 0xfc) && (ecn === 0 || ecn === 0x03);
  if (ok) {
    const f: string[] = [];
    if (dscp) f.push(`ip_dscp=${(v.value & 0xfc) >> 2}`);
    if (ecn) f.push(`nw_ecn=${v.value & 3}`);
    return [f];
  }
  const vals = enumerateMasked(v.value, v.mask, 8, cap);
  if (!vals) return refuse('ip_tos mask needs too many flows', 'ip_tos');
  return vals.map((x) => [`ip_dscp=${x >> 2}`, `nw_ecn=${x & 3}`]);
}

function unmaskable(field: string, v: Masked<number>, bits: number, cap: number, attr: string): Alt {
  const full = 2 ** bits - 1;
  if ((v.mask & full) === full) return [[`${field}=${v.value}`]];
  if ((v.mask & full) === 0) return [[]];
  const vals = enumerateMasked(v.value, v.mask, bits, cap);
  if (!vals) return refuse(`${attr} mask ${hex(v.mask)} would need more than ${cap} flows (OpenFlow cannot mask ${field})`, attr);
  return vals.map((x) => [`${field}=${x}`]);
}

/** ip_flags -> nw_frag (flower: bit 0 is-fragment, bit 1 first-fragment; docs/mapping.md). */
function fragAlts(v: Masked<number>): Alt {
  const frag = v.mask & 1 ? (v.value & 1 ? 'yes' : 'no') : 'any';
  const first = v.mask & 2 ? (v.value & 2 ? 'yes' : 'no') : 'any';
  if (frag === 'no') return first === 'yes' ? [] : [['nw_frag=no']]; // nofrag/firstfrag matches nothing
  if (frag === 'yes') return [[first === 'yes' ? 'nw_frag=first' : first === 'no' ? 'nw_frag=later' : 'nw_frag=yes']];
  if (first === 'yes') return [['nw_frag=first']];
  if (first === 'no') return [['nw_frag=no'], ['nw_frag=later']];
  return [[]];
}

/**
 * All OpenFlow matches (without in_port) that together select exactly what
 * the rule's key selects, or in 'superset' mode at least that.
 */
export function translateMatch(rule: FlowerRule, ctx: MatchContext, mode: MatchMode = 'exact'): string[][] {
  const m = rule.match;
  const cap = ctx.maxFlowsPerRule;
  const alts: Alt[] = [protocolGate(rule, mode)];
  const fixed: string[] = [];
  // A key OpenFlow cannot state: refused when exact, no constraint in a superset.
  const inexact = (msg: string, attr: string): Alt => (mode === 'exact' ? refuse(msg, attr) : [[]]);
  if (m.indev !== undefined && m.indev !== rule.dev) return []; // skb_iif is always the representor itself here
  if (m.vlanId !== undefined || m.vlanPrio !== undefined || m.vlanEthType !== undefined || m.cvlanId !== undefined || m.cvlanPrio !== undefined || m.cvlanEthType !== undefined) {
    // In a superset the gate already holds the outer VID/PCP; cvlan keys are dropped.
    inexact('vlan keys: OpenFlow cannot match the VLAN TPID flower compares', 'vlan_id');
  }
  if (m.encKeyId !== undefined || m.encSrcIp || m.encDstIp || m.encDstPort || m.encTos || m.encTtl || m.encOpts) {
    inexact('tunnel keys (enc_*) are not offloaded yet: tunnels need per-VM tunnel ports (a later design)', 'enc_key_id');
  }
  if (m.dstMac) fixed.push(maskedAddr('dl_dst', m.dstMac, 'ff:ff:ff:ff:ff:ff'));
  if (m.srcMac) fixed.push(maskedAddr('dl_src', m.srcMac, 'ff:ff:ff:ff:ff:ff'));
  const l3 = l3Protocol(m);
  if (m.mplsLabel !== undefined) fixed.push(`mpls_label=${m.mplsLabel}`);
  if (m.mplsTc !== undefined) fixed.push(`mpls_tc=${m.mplsTc}`);
  if (m.mplsBos !== undefined) fixed.push(`mpls_bos=${m.mplsBos}`);
  if (m.mplsTtl !== undefined) fixed.push(`mpls_ttl=${m.mplsTtl}`);
  if (m.ipProto !== undefined) fixed.push(`nw_proto=${m.ipProto}`);
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
  for (const [key, f4, f6] of [[m.srcIp, 'nw_src', 'ipv6_src'], [m.dstIp, 'nw_dst', 'ipv6_dst']] as const) {
    if (!key) continue;
    const six = ipFamily(key.value) === 6;
    // ovs-ofctl reads `/N` before an IPv6 mask address (packets.c ipv6_parse_masked_len), so a mask such
    // as 8000:: would be taken for prefix length 8000: a contiguous mask is written as its length.
    const len = six ? maskPrefixLen(ipToBytes(key.mask)) : -1;
    fixed.push(len >= 0 && len < 128 ? `${f6}=${key.value}/${len}` : maskedAddr(six ? f6 : f4, key, six ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255'));
  }
  const l4 = l4Prefix(m);
  if (l4) {
    if (m.srcPort) fixed.push(masked(`${l4}_src`, m.srcPort, 0xffff));
    if (m.dstPort) fixed.push(masked(`${l4}_dst`, m.dstPort, 0xffff));
    if (m.srcPortRange) alts.push(rangeToPrefixes(m.srcPortRange.min, m.srcPortRange.max).map((p) => [masked(`${l4}_src`, p, 0xffff)]));
    if (m.dstPortRange) alts.push(rangeToPrefixes(m.dstPortRange.min, m.dstPortRange.max).map((p) => [masked(`${l4}_dst`, p, 0xffff)]));
  }
  if (m.tcpFlags) fixed.push(m.tcpFlags.mask === 0xfff ? `tcp_flags=${hex(m.tcpFlags.value)}` : `tcp_flags=${hex(m.tcpFlags.value & m.tcpFlags.mask)}/${hex(m.tcpFlags.mask)}`);
  const icmp = m.ipProto === IpProto.ICMPV6 ? 'icmpv6' : 'icmp';
  if (m.icmpType) alts.push(orAny(() => unmaskable(`${icmp}_type`, m.icmpType!, 8, cap, 'type')));
  if (m.icmpCode) alts.push(orAny(() => unmaskable(`${icmp}_code`, m.icmpCode!, 8, cap, 'code')));
  if (m.arpSip) fixed.push(maskedAddr('arp_spa', m.arpSip, '255.255.255.255'));
  if (m.arpTip) fixed.push(maskedAddr('arp_tpa', m.arpTip, '255.255.255.255'));
  if (m.arpOp) alts.push(orAny(() => unmaskable('arp_op', m.arpOp!, 8, cap, 'arp_op')));
  if (m.arpSha) fixed.push(maskedAddr('arp_sha', m.arpSha, 'ff:ff:ff:ff:ff:ff'));
  if (m.arpTha) fixed.push(maskedAddr('arp_tha', m.arpTha, 'ff:ff:ff:ff:ff:ff'));
  if (m.ipFlags) {
    if (l3 !== EthP.IP && l3 !== EthP.IPV6) alts.push(inexact('ip_flags on a filter that is not protocol ip/ipv6 also matches every non-IP frame, which OpenFlow cannot say', 'ip_flags'));
    else alts.push(fragAlts(m.ipFlags));
  }
  if (m.ctState) fixed.push(`ct_state=${ovsCtState(m.ctState)}`);
  if (m.ctZone) {
    if (m.ctZone.mask !== 0xffff) inexact('a masked ct_zone cannot be offloaded: zones are remapped per VM', 'ct_zone');
    else fixed.push(`ct_zone=${ctx.zone(m.ctZone.value)}`);
  }
  if (m.ctMark) fixed.push(masked('ct_mark', m.ctMark, 0xffffffff));
  if (m.ctLabel) fixed.push(m.ctLabel.mask === 'f'.repeat(32) ? `ct_label=0x${m.ctLabel.value}` : `ct_label=0x${m.ctLabel.value}/0x${m.ctLabel.mask}`);
  // Cross product, capped.
  let flows: string[][] = [[]];
  for (const a of alts) {
    const next: string[][] = [];
    for (const f of flows) for (const x of a) next.push([...f, ...x]);
    flows = next;
    if (flows.length > cap) refuse(`the rule needs more than ${cap} OpenFlow flows (ranges and masks multiply)`, 'match');
  }
  return flows.map((f) => [...f, ...fixed]).flatMap(laterFragment);
}

const L4_FIELD = /^(tcp|udp|sctp)_(src|dst)=|^tcp_flags=|^icmp(v6)?_(type|code)=/;

/**
 * Later fragments carry no L4 header: OVS refuses L4 fields beside
 * nw_frag=later (OFPBMC_BAD_PREREQ), and flower dissects them as 0. So an L4
 * key that selects 0 is no constraint there, and any other makes the piece
 * match nothing.
 */
function laterFragment(flow: string[]): string[][] {
  if (!flow.includes('nw_frag=later')) return [flow];
  const out: string[] = [];
  for (const f of flow) {
    if (!L4_FIELD.test(f)) {
      out.push(f);
      continue;
    }
    const [v, m] = f.slice(f.indexOf('=') + 1).split('/');
    if ((Number(v) & (m === undefined ? 0xffff : Number(m))) !== 0) return [];
  }
  return [out];
}

/**
 * What a trap flow of a rule that is not offloaded takes: the rule's match as
 * exactly as OpenFlow says it (keys it cannot say dropped), or, when even that
 * needs too many flows, the rule's protocol alone.
 */
export function trapMatches(rule: FlowerRule, ctx: MatchContext): string[][] {
  try {
    return translateMatch(rule, ctx, 'superset');
  } catch (e) {
    if (!(e instanceof VpfError)) throw e;
    const p = rule.protocol;
    if (p === EthP.ALL) return [[]];
    if (p === EthP.VLAN_8021Q || p === EthP.VLAN_8021AD) return taggedAlts();
    return [[`dl_type=${hex(p)}`, UNTAGGED]];
  }
}

/**
 * IPv6 later fragments: OVS reports nw_proto 44 for them where flower keeps
 * the upper protocol (P4), so a rule with ip_proto misses them in OpenFlow.
 * These matches take the later fragments each of `matches` would have taken
 * but for nw_proto (L4 keys as laterFragment treats them); they go to software.
 */
export function ipv6LaterFragments(rule: FlowerRule, matches: string[][]): string[][] {
  if (rule.match.ipProto === undefined || l3Protocol(rule.match) !== EthP.IPV6) return [];
  const out: string[][] = [];
  const seen = new Set<string>();
  for (const m of matches) {
    if (m.some((f) => f.startsWith('nw_frag=') && f !== 'nw_frag=later' && f !== 'nw_frag=yes')) continue;
    for (const piece of laterFragment([...m.filter((f) => !f.startsWith('nw_proto=') && !f.startsWith('nw_frag=')), 'nw_frag=later'])) {
      const k = piece.join(',');
      if (!seen.has(k)) out.push(piece);
      seen.add(k);
    }
  }
  return out;
}
