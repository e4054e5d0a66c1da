// Does a filter's key match a packet? The flow dissector's view of a packet
// (net/core/flow_dissector.c) compared under the filter's masks, as
// cls_flower.c fl_classify -> fl_mask_lookup does.
import { ipFamily, ipToBytes, macToBytes, hexToBytes } from '../addr.js';
import type { FlowerMatch, FlowerRule, Masked } from '../model.js';
import { EthP, IpProto } from '../model.js';
import type { Packet } from '../packet.js';
import { l3Protocol } from '../validate.js';

const isVlanTpid = (p: number | undefined) => p === EthP.VLAN_8021Q || p === EthP.VLAN_8021AD;

function bytesEq(a: Uint8Array, b: Uint8Array, m: Uint8Array): boolean {
  for (let i = 0; i < m.length; i++) if (((a[i] ?? 0) & m[i]!) !== ((b[i] ?? 0) & m[i]!)) return false;
  return true;
}
const num = (k: Masked<number> | undefined, v: number) => !k || (k.value & k.mask) >>> 0 === (v & k.mask) >>> 0;
const mac = (k: Masked<string> | undefined, v: string | undefined) => !k || (v !== undefined && bytesEq(macToBytes(k.value), macToBytes(v), macToBytes(k.mask)));
function ip(k: Masked<string> | undefined, v: string | undefined): boolean {
  if (!k) return true;
  // cls_flower.c: an IPv4 key also constrains the address type (FLOW_DISSECTOR_KEY_CONTROL addr_type).
  if (v === undefined || ipFamily(v) !== ipFamily(k.value)) return false;
  return bytesEq(ipToBytes(k.value), ipToBytes(v), ipToBytes(k.mask));
}
const label = (k: Masked<string> | undefined, v: string) => !k || bytesEq(hexToBytes(k.value), hexToBytes(v.padEnd(32, '0')), hexToBytes(k.mask));

/** skb_protocol(skb, false): the outer TPID of a tagged frame, else its ethertype (include/linux/if_vlan.h). */
export function skbProtocol(p: Packet): number {
  return p.vlans[0]?.tpid ?? p.ethType;
}

/** __tcf_classify: a tcf_proto sees only packets of its protocol, unless it is ETH_P_ALL. */
export function protocolMatches(rule: FlowerRule, p: Packet): boolean {
  return rule.protocol === EthP.ALL || rule.protocol === skbProtocol(p);
}

/** L4 fields as flower dissects them: every IP fragment has ports, flags and ICMP zeroed (no FLOW_DISSECTOR_F_PARSE_1ST_FRAG). */
function l4(p: Packet): { src: number; dst: number; tcpFlags: number; icmpType: number; icmpCode: number } {
  if (!p.ip || p.ip.frag !== 'no') return { src: 0, dst: 0, tcpFlags: 0, icmpType: 0, icmpCode: 0 };
  return { src: p.l4?.src ?? 0, dst: p.l4?.dst ?? 0, tcpFlags: p.tcpFlags ?? 0, icmpType: p.icmp?.type ?? 0, icmpCode: p.icmp?.code ?? 0 };
}

export function keysMatch(m: FlowerMatch, p: Packet): boolean {
  if (m.indev !== undefined && m.indev !== p.inDev) return false;
  if (!mac(m.dstMac, p.dstMac) || !mac(m.srcMac, p.srcMac)) return false;
  if (m.numOfVlans !== undefined && m.numOfVlans !== p.vlans.length) return false;
  // fl_set_key: a VLAN ethertype in eth_type makes the outer tag (with that TPID) part of the key.
  if (isVlanTpid(m.ethType)) {
    const outer = p.vlans[0];
    if (!outer || outer.tpid !== m.ethType) return false;
    if (m.vlanId !== undefined && outer.vid !== m.vlanId) return false;
    if (m.vlanPrio !== undefined && outer.pcp !== m.vlanPrio) return false;
    if (isVlanTpid(m.vlanEthType)) {
      const inner = p.vlans[1];
      if (!inner || inner.tpid !== m.vlanEthType) return false;
      if (m.cvlanId !== undefined && inner.vid !== m.cvlanId) return false;
      if (m.cvlanPrio !== undefined && inner.pcp !== m.cvlanPrio) return false;
    }
  } else if ((m.numOfVlans ?? 0) >= 1) {
    // num_of_vlans enables the vlan keys without a TPID constraint (fl_set_key is_vlan_key).
    if (m.vlanId !== undefined && p.vlans[0]?.vid !== m.vlanId) return false;
    if (m.vlanPrio !== undefined && p.vlans[0]?.pcp !== m.vlanPrio) return false;
  }
  // basic.n_proto: the ethertype after the tags the dissector walks (two at most).
  const n = l3Protocol(m);
  if (n !== undefined && !isVlanTpid(n) && n !== p.ethType) return false;
  if (m.mplsLabel !== undefined || m.mplsTc !== undefined || m.mplsBos !== undefined || m.mplsTtl !== undefined) {
    const lse = p.mpls?.[0];
    if (!lse) return false;
    if (m.mplsLabel !== undefined && lse.label !== m.mplsLabel) return false;
    if (m.mplsTc !== undefined && lse.tc !== m.mplsTc) return false;
    if (m.mplsBos !== undefined && lse.bos !== m.mplsBos) return false;
    if (m.mplsTtl !== undefined && lse.ttl !== m.mplsTtl) return false;
  }
  if (m.ipProto !== undefined && p.ip?.proto !== m.ipProto) return false;
  if ((m.ipTos || m.ipTtl) && !p.ip) return false;
  if (!num(m.ipTos, p.ip?.tos ?? 0) || !num(m.ipTtl, p.ip?.ttl ?? 0)) return false;
  if (!ip(m.srcIp, p.ip?.src) || !ip(m.dstIp, p.ip?.dst)) return false;
  const f = l4(p);
  if (!num(m.srcPort, f.src) || !num(m.dstPort, f.dst)) return false;
  // fl_range_port_dst_cmp: inclusive bounds.
  if (m.srcPortRange && (f.src < m.srcPortRange.min || f.src > m.srcPortRange.max)) return false;
  if (m.dstPortRange && (f.dst < m.dstPortRange.min || f.dst > m.dstPortRange.max)) return false;
  if (!num(m.tcpFlags, f.tcpFlags)) return false;
  if (!num(m.icmpType, f.icmpType) || !num(m.icmpCode, f.icmpCode)) return false;
  if (m.arpSip || m.arpTip || m.arpOp || m.arpSha || m.arpTha) {
    const a = p.arp;
    if (!a) return false;
    if (!ip(m.arpSip, a.sip) || !ip(m.arpTip, a.tip) || !num(m.arpOp, a.op) || !mac(m.arpSha, a.sha) || !mac(m.arpTha, a.tha)) return false;
  }
  // TCA_FLOWER_KEY_FLAGS: non-IP packets dissect as "not a fragment" (flags 0).
  const flags = !p.ip || p.ip.frag === 'no' ? 0 : p.ip.frag === 'first' ? 3 : 1;
  if (!num(m.ipFlags, flags)) return false;
  if (!num(m.ctState, p.ct.state) || !num(m.ctZone, p.ct.zone) || !num(m.ctMark, p.ct.mark) || !label(m.ctLabel, p.ct.label)) return false;
  const enc = m.encKeyId !== undefined || m.encSrcIp || m.encDstIp || m.encDstPort || m.encTos || m.encTtl || m.encOpts;
  if (enc) {
    const t = p.tunnel;
    // Tunnel keys match metadata of decapsulated packets only (FLOW_DISSECTOR_KEY_ENC_*).
    if (!t) return false;
    if (m.encKeyId !== undefined && t.id !== m.encKeyId) return false;
    if (!ip(m.encSrcIp, t.src) || !ip(m.encDstIp, t.dst) || !num(m.encDstPort, t.dstPort) || !num(m.encTos, t.tos) || !num(m.encTtl, t.ttl)) return false;
    // The packet model carries no tunnel options: a rule that needs some does not match.
    if (m.encOpts) return false;
  }
  void IpProto;
  return true;
}

/** Masked fields whose values are addresses or a label: masked byte by byte. */
const MAC_KEYS = new Set(['dstMac', 'srcMac', 'arpSha', 'arpTha']);

/**
 * The key a filter is found by in its mask's table (cls_flower.c
 * fl_set_masked_key): each masked field's value under its mask, the others
 * as they are. Two filters of one tcf_proto with equal mask shapes and equal
 * keys collide (fl_ht_insert_unique: EEXIST), whatever their actions or flags.
 */
export function maskedKey(m: FlowerMatch): string {
  const parts: unknown[] = [];
  for (const k of Object.keys(m).sort()) {
    const v = (m as Record<string, unknown>)[k];
    if (!v || typeof v !== 'object' || !('mask' in v)) {
      parts.push([k, v]);
      continue;
    }
    const { value, mask } = v as Masked<number | string>;
    if (typeof value === 'number') parts.push([k, (value & (mask as number)) >>> 0]);
    else {
      const bytes = (x: string) => (k === 'ctLabel' ? hexToBytes(x) : MAC_KEYS.has(k) ? macToBytes(x) : ipToBytes(x));
      const mb = bytes(mask as string);
      parts.push([k, Array.from(bytes(value), (b, i) => b & (mb[i] ?? 0))]);
    }
  }
  return JSON.stringify(parts);
}

/** The shape of a filter's mask: filters with equal shapes share one entry of the tcf_proto's mask list. */
export function maskShape(m: FlowerMatch): string {
  const parts: string[] = [];
  for (const k of Object.keys(m).sort()) {
    const v = (m as Record<string, unknown>)[k];
    if (v && typeof v === 'object' && 'mask' in v) parts.push(`${k}=${JSON.stringify((v as Masked<unknown>).mask)}`);
    else if (k.endsWith('Range')) parts.push(`${k}=range`);
    else if (k === 'encOpts') parts.push(`${k}=${JSON.stringify(v)}`);
    else parts.push(k);
  }
  return parts.join(',');
}
