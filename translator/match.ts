// A flower match as OpenFlow matches (ovs-ofctl syntax, ovs-fields(7)). One
// rule may need several flows (ranges, unmaskable masks, ip_flags
// nofirstfrag): the result is the cross product of per-key alternatives,
// capped. Keys OpenFlow cannot express exactly are refused with EOPNOTSUPP.
import { ipFamily } from '../rules/addr.js';
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

const refuse = (msg: string, attr?: string): never => {
  throw new VpfError(Errno.EOPNOTSUPP, msg, attr);
};

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
function protocolGate(rule: FlowerRule): string[] {
  const p = rule.protocol;
  if (p === EthP.ALL) {
    const n = rule.match.numOfVlans;
    if (n === undefined) return [];
    if (n === 0) return ['vlan_tci=0x0000/0x1000'];
    return refuse('num_of_vlans >= 1: OpenFlow cannot count VLAN tags nor tell their TPIDs apart (ovs-fields(7) vlan_tci)', 'num_of_vlans');
  }
  if (p === EthP.VLAN_8021Q || p === EthP.VLAN_8021AD) {
    return refuse('protocol 802.1Q/802.1ad: OpenFlow cannot match a VLAN TPID (ovs-fields(7): "no version of OpenFlow provides a way to match on the TPID"), so such a filter cannot be offloaded exactly', 'protocol');
  }
  return [`dl_type=${hex(p)}`, 'vlan_tci=0x0000/0x1000'];
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

/** All OpenFlow matches (without in_port) that together select exactly what the rule's key selects. */
export function translateMatch(rule: FlowerRule, ctx: MatchContext): string[][] {
  const m = rule.match;
  const cap = ctx.maxFlowsPerRule;
  const alts: Alt[] = [[protocolGate(rule)]];
  const fixed: string[] = [];
  if (m.indev !== undefined && m.indev !== rule.dev) return []; // skb_iif is always the representor itself here
  if (m.vlanId !== undefined || m.vlanPrio !== undefined || m.vlanEthType !== undefined || m.cvlanId !== undefined || m.cvlanPrio !== undefined || m.cvlanEthType !== undefined) {
    refuse('vlan keys: OpenFlow cannot match the VLAN TPID flower compares', 'vlan_id');
  }
  if (m.encKeyId !== undefined || m.encSrcIp || m.encDstIp || m.encDstPort || m.encTos || m.encTtl || m.encOpts) {
    refuse('tunnel keys (enc_*) are not offloaded yet: tunnels need per-VM tunnel ports (a later design)', 'enc_key_id');
  }
  if (m.dstMac) fixed.push(maskedAddr('dl_dst', m.dstMac, 'ff:ff:ff:ff:ff:ff'));
  if (m.srcMac) fixed.push(maskedAddr('dl_src', m.srcMac, 'ff:ff:ff:ff:ff:ff'));
  const l3 = l3Protocol(m);
  if (m.mplsLabel !== undefined) fixed.push(`mpls_label=${m.mplsLabel}`);
  if (m.mplsTc !== undefined) fixed.push(`mpls_tc=${m.mplsTc}`);
  if (m.mplsBos !== undefined) fixed.push(`mpls_bos=${m.mplsBos}`);
  if (m.mplsTtl !== undefined) fixed.push(`mpls_ttl=${m.mplsTtl}`);
  if (m.ipProto !== undefined) fixed.push(`nw_proto=${m.ipProto}`);
  if (m.ipTos) alts.push(tosAlts(m.ipTos, cap));
  if (m.ipTtl) alts.push(unmaskable('nw_ttl', m.ipTtl, 8, cap, 'ip_ttl'));
  for (const [key, f4, f6] of [[m.srcIp, 'nw_src', 'ipv6_src'], [m.dstIp, 'nw_dst', 'ipv6_dst']] as const) {
    if (!key) continue;
    const six = ipFamily(key.value) === 6;
    fixed.push(maskedAddr(six ? f6 : f4, key, six ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255'));
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
  if (m.icmpType) alts.push(unmaskable(`${icmp}_type`, m.icmpType, 8, cap, 'type'));
  if (m.icmpCode) alts.push(unmaskable(`${icmp}_code`, m.icmpCode, 8, cap, 'code'));
  if (m.arpSip) fixed.push(maskedAddr('arp_spa', m.arpSip, '255.255.255.255'));
  if (m.arpTip) fixed.push(maskedAddr('arp_tpa', m.arpTip, '255.255.255.255'));
  if (m.arpOp) alts.push(unmaskable('arp_op', m.arpOp, 8, cap, 'arp_op'));
  if (m.arpSha) fixed.push(maskedAddr('arp_sha', m.arpSha, 'ff:ff:ff:ff:ff:ff'));
  if (m.arpTha) fixed.push(maskedAddr('arp_tha', m.arpTha, 'ff:ff:ff:ff:ff:ff'));
  if (m.ipFlags) {
    if (l3 !== EthP.IP && l3 !== EthP.IPV6) refuse('ip_flags on a filter that is not protocol ip/ipv6 also matches every non-IP frame, which OpenFlow cannot say', 'ip_flags');
    alts.push(fragAlts(m.ipFlags));
  }
  if (m.ctState) fixed.push(`ct_state=${ovsCtState(m.ctState)}`);
  if (m.ctZone) {
    if (m.ctZone.mask !== 0xffff) refuse('a masked ct_zone cannot be offloaded: zones are remapped per VM', 'ct_zone');
    fixed.push(`ct_zone=${ctx.zone(m.ctZone.value)}`);
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

/** A match that covers at least the rule's packets: for trap flows of rules that are not offloaded. */
export function supersetMatch(rule: FlowerRule): string[] {
  const p = rule.protocol;
  if (p === EthP.ALL) return [];
  // Any tag: OpenFlow cannot tell 802.1Q from 802.1ad, so the trap takes both.
  if (p === EthP.VLAN_8021Q || p === EthP.VLAN_8021AD) return ['vlan_tci=0x1000/0x1000'];
  return [`dl_type=${hex(p)}`, 'vlan_tci=0x0000/0x1000'];
}
