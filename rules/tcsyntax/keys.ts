// flower keys in tc syntax (tc-flower(8), iproute2 tc/f_flower.c). parseKey
// consumes one keyword and its argument into the match; printKeys emits the
// canonical form in a fixed order that parseKey reads back identically.
import { Errno, VpfError } from '../errors.js';
import { bytesToHex, hexToBytes } from '../addr.js';
import type { FlowerMatch, GeneveOpt, Masked } from '../model.js';
import { CtState, IpProto } from '../model.js';
import { bad, ethProto, ethProtoName, maskedIp, maskedMac, maskedUint, printMaskedIp, printMaskedMac, printMaskedUint, uint, type Tokens } from './lex.js';

const IP_PROTOS: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58 };
const IP_PROTO_NAMES: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp', 1: 'icmp', 58: 'icmpv6' };

// ct_state flag names as tc-flower(8) spells them.
const CT_FLAGS: [string, number][] = [
  ['trk', CtState.TRACKED], ['new', CtState.NEW], ['est', CtState.ESTABLISHED], ['rel', CtState.RELATED],
  ['inv', CtState.INVALID], ['rpl', CtState.REPLY],
];

function parseCtState(s: string): Masked<number> {
  let value = 0, mask = 0;
  const re = /([+-])([a-z]+)/g;
  let m: RegExpExecArray | null;
  let seen = 0;
  while ((m = re.exec(s))) {
    const bit = CT_FLAGS.find(([n]) => n === m![2])?.[1];
    if (bit === undefined) bad(`Illegal "ct_state" flag '${m[2]}'`, 'ct_state');
    mask |= bit!;
    if (m[1] === '+') value |= bit!;
    seen += m[0].length;
  }
  if (seen !== s.length || mask === 0) bad(`Illegal "ct_state": '${s}' (want e.g. +trk+est-new)`, 'ct_state');
  return { value, mask };
}

function printCtState(v: Masked<number>): string {
  return CT_FLAGS.filter(([, b]) => v.mask & b).map(([n, b]) => (v.value & b ? '+' : '-') + n).join('');
}

// ip_flags: frag (IS_FRAGMENT=1), firstfrag (FRAG_IS_FIRST=2), each with a "no" form, joined by '/'.
function parseIpFlags(s: string): Masked<number> {
  let value = 0, mask = 0;
  for (const part of s.split('/')) {
    const no = part.startsWith('no');
    const name = no ? part.slice(2) : part;
    const bit = name === 'frag' ? 1 : name === 'firstfrag' ? 2 : 0;
    if (!bit) bad(`Illegal "ip_flags" flag '${part}'`, 'ip_flags');
    mask |= bit;
    if (!no) value |= bit;
  }
  return { value, mask };
}

function printIpFlags(v: Masked<number>): string {
  const parts: string[] = [];
  if (v.mask & 1) parts.push(v.value & 1 ? 'frag' : 'nofrag');
  if (v.mask & 2) parts.push(v.value & 2 ? 'firstfrag' : 'nofirstfrag');
  return parts.join('/');
}

/** geneve_opts CLASS:TYPE:DATA[,CLASS:TYPE:DATA...][/CLASS:TYPE:DATA[,...]] (f_flower.c flower_parse_geneve_opts). */
function parseGeneve(s: string): { value: GeneveOpt[]; mask: GeneveOpt[] } {
  const [vs, ms] = s.split('/');
  const one = (o: string): GeneveOpt => {
    const [c, t, d] = o.split(':');
    if (c === undefined || t === undefined || d === undefined) bad(`Illegal "geneve_opts": '${o}'`, 'geneve_opts');
    const data = d!.toLowerCase();
    if (!/^([0-9a-f]{8})+$/.test(data) || data.length > 248) bad(`Illegal "geneve_opts" data '${d}' (4..124 bytes in hex)`, 'geneve_opts');
    return { class: uint(c!.startsWith('0x') ? c! : `0x${c}`, 'geneve class', 0xffff), type: uint(t!.startsWith('0x') ? t! : `0x${t}`, 'geneve type', 0xff), data };
  };
  const value = vs!.split(',').map(one);
  // Without a mask, iproute2 matches every option exactly (all-ones mask of the same shape).
  const mask = ms === undefined ? value.map((o) => ({ class: 0xffff, type: 0xff, data: 'f'.repeat(o.data.length) })) : ms.split(',').map(one);
  if (mask.length !== value.length) bad('"geneve_opts" needs one mask per option', 'geneve_opts');
  return { value, mask };
}

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
const printGeneve = (g: { value: GeneveOpt[]; mask: GeneveOpt[] }) =>
  g.value.map((o) => `${hex(o.class, 4)}:${hex(o.type, 2)}:${o.data}`).join(',') + '/' + g.mask.map((o) => `${hex(o.class, 4)}:${hex(o.type, 2)}:${o.data}`).join(',');

function maskedLabel(s: string): Masked<string> {
  const [v, m] = s.split('/');
  const norm = (x: string) => {
    const h = x.replace(/^0x/, '').toLowerCase();
    // iproute2 hex2mem reads whole bytes: an odd digit count is not a label.
    if (!/^([0-9a-f]{2}){1,16}$/.test(h)) bad(`Illegal "ct_label": '${x}' (1 to 16 bytes of hex)`, 'ct_label');
    return bytesToHex(hexToBytes(h.padEnd(32, '0')));
  };
  return { value: norm(v!), mask: m === undefined ? 'f'.repeat(32) : norm(m) };
}

/** Keys whose tc keyword takes VALUE[/MASK] of an unsigned integer. */
const MASKED_UINTS: [string, keyof FlowerMatch, number][] = [
  ['ip_tos', 'ipTos', 0xff], ['ip_ttl', 'ipTtl', 0xff], ['tcp_flags', 'tcpFlags', 0x0fff],
  ['ct_zone', 'ctZone', 0xffff], ['ct_mark', 'ctMark', 0xffffffff],
  ['enc_tos', 'encTos', 0xff], ['enc_ttl', 'encTtl', 0xff], ['enc_dst_port', 'encDstPort', 0xffff],
];
const EXACT_UINTS: [string, keyof FlowerMatch, number][] = [
  ['vlan_id', 'vlanId', 4095], ['vlan_prio', 'vlanPrio', 7], ['cvlan_id', 'cvlanId', 4095], ['cvlan_prio', 'cvlanPrio', 7],
  ['mpls_label', 'mplsLabel', 0xfffff], ['mpls_tc', 'mplsTc', 7], ['mpls_bos', 'mplsBos', 1], ['mpls_ttl', 'mplsTtl', 0xff],
  ['enc_key_id', 'encKeyId', 0xffffffff], ['num_of_vlans', 'numOfVlans', 0xff],
];
const MACS: [string, keyof FlowerMatch][] = [['dst_mac', 'dstMac'], ['src_mac', 'srcMac'], ['arp_sha', 'arpSha'], ['arp_tha', 'arpTha']];
const IPS: [string, keyof FlowerMatch, 4 | undefined][] = [
  ['dst_ip', 'dstIp', undefined], ['src_ip', 'srcIp', undefined], ['enc_dst_ip', 'encDstIp', undefined], ['enc_src_ip', 'encSrcIp', undefined],
  ['arp_tip', 'arpTip', 4], ['arp_sip', 'arpSip', 4],
];

function parsePort(s: string, what: string, m: FlowerMatch, side: 'src' | 'dst'): void {
  const r = /^(\d+)-(\d+)$/.exec(s);
  if (r) {
    const min = uint(r[1]!, what, 0xffff), max = uint(r[2]!, what, 0xffff);
    if (min >= max) bad(`Invalid "${what}" range (min must be strictly smaller than max)`, what);
    m[side === 'src' ? 'srcPortRange' : 'dstPortRange'] = { min, max };
  } else m[side === 'src' ? 'srcPort' : 'dstPort'] = maskedUint(s, what, 0xffff);
}

function unsupported(kw: string): never {
  throw new VpfError(Errno.EOPNOTSUPP, `flower key "${kw}" is not supported by vpf`, kw);
}

/** Parses one key keyword at the token cursor; returns false when the word is not a key. */
export function parseKey(t: Tokens, kw: string, m: FlowerMatch): boolean {
  const x = m as Record<string, unknown>;
  const u = MASKED_UINTS.find(([k]) => k === kw);
  if (u) {
    x[u[1]] = maskedUint(t.next(kw), kw, u[2]);
    return true;
  }
  const e = EXACT_UINTS.find(([k]) => k === kw);
  if (e) {
    x[e[1]] = uint(t.next(kw), kw, e[2]);
    return true;
  }
  const mac = MACS.find(([k]) => k === kw);
  if (mac) {
    x[mac[1]] = maskedMac(t.next(kw), kw);
    return true;
  }
  const ip = IPS.find(([k]) => k === kw);
  if (ip) {
    x[ip[1]] = maskedIp(t.next(kw), kw, ip[2]);
    return true;
  }
  switch (kw) {
    case 'indev':
      m.indev = t.next(kw);
      return true;
    case 'vlan_ethtype':
      m.vlanEthType = ethProto(t.next(kw), kw);
      return true;
    case 'cvlan_ethtype':
      m.cvlanEthType = ethProto(t.next(kw), kw);
      return true;
    case 'ip_proto': {
      const v = t.next(kw);
      m.ipProto = IP_PROTOS[v] ?? uint(v, kw, 0xff);
      return true;
    }
    case 'src_port':
    case 'dst_port':
      parsePort(t.next(kw), kw, m, kw === 'src_port' ? 'src' : 'dst');
      return true;
    case 'type':
      m.icmpType = maskedUint(t.next(kw), kw, 0xff);
      return true;
    case 'code':
      m.icmpCode = maskedUint(t.next(kw), kw, 0xff);
      return true;
    case 'arp_op': {
      const v = t.next(kw);
      m.arpOp = v === 'request' ? { value: 1, mask: 0xff } : v === 'reply' ? { value: 2, mask: 0xff } : maskedUint(v, kw, 0xff);
      return true;
    }
    case 'ip_flags':
      m.ipFlags = parseIpFlags(t.next(kw));
      return true;
    case 'ct_state':
      m.ctState = parseCtState(t.next(kw));
      return true;
    case 'ct_label':
      m.ctLabel = maskedLabel(t.next(kw));
      return true;
    case 'geneve_opts':
      m.encOpts = { ...m.encOpts, geneve: parseGeneve(t.next(kw)) };
      return true;
    case 'vxlan_opts':
      m.encOpts = { ...m.encOpts, vxlanGbp: maskedUint(t.next(kw), kw, 0xffffffff) };
      return true;
    case 'classid':
    case 'hw_tc':
    case 'pppoe_sid':
    case 'ppp_proto':
    case 'l2tpv3_sid':
    case 'spi':
    case 'cfm':
    case 'l2_miss':
    case 'mpls':
    case 'erspan_opts':
    case 'gtp_opts':
    case 'pfcp_opts':
    case 'enc_flags':
      unsupported(kw);
  }
  return false;
}

/** Canonical key order: the order of tc-flower(8)'s synopsis. */
export function printKeys(m: FlowerMatch): string[] {
  const o: string[] = [];
  const x = m as Record<string, unknown>;
  if (m.indev !== undefined) o.push('indev', m.indev);
  for (const [kw, f] of MACS.slice(0, 2)) if (x[f]) o.push(kw, printMaskedMac(x[f] as Masked<string>));
  if (m.numOfVlans !== undefined) o.push('num_of_vlans', String(m.numOfVlans));
  if (m.vlanId !== undefined) o.push('vlan_id', String(m.vlanId));
  if (m.vlanPrio !== undefined) o.push('vlan_prio', String(m.vlanPrio));
  if (m.vlanEthType !== undefined) o.push('vlan_ethtype', ethProtoName(m.vlanEthType));
  if (m.cvlanId !== undefined) o.push('cvlan_id', String(m.cvlanId));
  if (m.cvlanPrio !== undefined) o.push('cvlan_prio', String(m.cvlanPrio));
  if (m.cvlanEthType !== undefined) o.push('cvlan_ethtype', ethProtoName(m.cvlanEthType));
  for (const [kw, f] of EXACT_UINTS.slice(4, 8)) if (x[f] !== undefined) o.push(kw, String(x[f]));
  if (m.ipProto !== undefined) o.push('ip_proto', IP_PROTO_NAMES[m.ipProto] ?? String(m.ipProto));
  for (const [kw, f] of MASKED_UINTS.slice(0, 2)) if (x[f]) o.push(kw, printMaskedUint(x[f] as Masked<number>, 0xff, true));
  for (const [kw, f] of IPS.slice(0, 2)) if (x[f]) o.push(kw, printMaskedIp(x[f] as Masked<string>));
  if (m.dstPort) o.push('dst_port', printMaskedUint(m.dstPort, 0xffff));
  if (m.srcPort) o.push('src_port', printMaskedUint(m.srcPort, 0xffff));
  if (m.dstPortRange) o.push('dst_port', `${m.dstPortRange.min}-${m.dstPortRange.max}`);
  if (m.srcPortRange) o.push('src_port', `${m.srcPortRange.min}-${m.srcPortRange.max}`);
  if (m.tcpFlags) o.push('tcp_flags', printMaskedUint(m.tcpFlags, 0x0fff, true));
  if (m.icmpType) o.push('type', printMaskedUint(m.icmpType, 0xff));
  if (m.icmpCode) o.push('code', printMaskedUint(m.icmpCode, 0xff));
  for (const [kw, f] of IPS.slice(4)) if (x[f]) o.push(kw, printMaskedIp(x[f] as Masked<string>));
  if (m.arpOp) o.push('arp_op', printMaskedUint(m.arpOp, 0xff));
  for (const [kw, f] of MACS.slice(2)) if (x[f]) o.push(kw, printMaskedMac(x[f] as Masked<string>));
  if (m.ipFlags) o.push('ip_flags', printIpFlags(m.ipFlags));
  if (m.ctState) o.push('ct_state', printCtState(m.ctState));
  if (m.ctZone) o.push('ct_zone', printMaskedUint(m.ctZone, 0xffff));
  if (m.ctMark) o.push('ct_mark', printMaskedUint(m.ctMark, 0xffffffff, true));
  if (m.ctLabel) o.push('ct_label', m.ctLabel.mask === 'f'.repeat(32) ? m.ctLabel.value : `${m.ctLabel.value}/${m.ctLabel.mask}`);
  if (m.encKeyId !== undefined) o.push('enc_key_id', String(m.encKeyId));
  for (const [kw, f] of IPS.slice(2, 4)) if (x[f]) o.push(kw, printMaskedIp(x[f] as Masked<string>));
  if (m.encDstPort) o.push('enc_dst_port', printMaskedUint(m.encDstPort, 0xffff));
  if (m.encTos) o.push('enc_tos', printMaskedUint(m.encTos, 0xff, true));
  if (m.encTtl) o.push('enc_ttl', printMaskedUint(m.encTtl, 0xff));
  if (m.encOpts?.geneve) o.push('geneve_opts', printGeneve(m.encOpts.geneve));
  if (m.encOpts?.vxlanGbp) o.push('vxlan_opts', printMaskedUint(m.encOpts.vxlanGbp, 0xffffffff));
  return o;
}

export { IpProto };
