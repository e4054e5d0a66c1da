// flower keys in tc syntax (tc-flower(8), iproute2 tc/f_flower.c). parseKey
// consumes one keyword and its argument into the match; printKeys emits the
// canonical form in a fixed order that parseKey reads back identically.
import { Errno, VpfError } from '../errors.js';
import type { FlowerMatch, GeneveOpt, Masked } from '../model.js';
import { CtState, IpProto } from '../model.js';
import { innerEthType } from '../netlink/flowerKeys.js';
import { bad, decOrHex, ethProto, ethProtoName, maskedIp, maskedMac, maskedUint, printMaskedIp, printMaskedMac, printMaskedUint, uint, type Tokens } from './lex.js';

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
    // f_flower.c flower_parse_matching_flags: each word sets or clears its bit; a later word wins.
    mask |= bit;
    value = no ? value & ~bit : value | bit;
  }
  return { value, mask };
}

function printIpFlags(v: Masked<number>): string {
  const parts: string[] = [];
  if (v.mask & 1) parts.push(v.value & 1 ? 'frag' : 'nofrag');
  if (v.mask & 2) parts.push(v.value & 2 ? 'firstfrag' : 'nofirstfrag');
  return parts.join('/');
}

/**
 * geneve_opts OPT[,OPT...], each OPT CLASS:TYPE:DATA[/CLASS:TYPE:DATA] with its own
 * mask (f_flower.c flower_parse_enc_opts_geneve); an option without one is exact.
 */
function parseGeneve(s: string): { value: GeneveOpt[]; mask: GeneveOpt[] } {
  const one = (o: string): GeneveOpt => {
    const [c, t, d, extra] = o.split(':');
    if (c === undefined || t === undefined || d === undefined || extra !== undefined) bad(`Illegal "geneve_opts": '${o}'`, 'geneve_opts');
    const data = d!.toLowerCase();
    if (!/^([0-9a-f]{8})+$/.test(data) || data.length > 248) bad(`Illegal "geneve_opts" data '${d}' (4..124 bytes in hex)`, 'geneve_opts');
    return { class: uint(c!, 'geneve class', 0xffff, 16), type: uint(t!, 'geneve type', 0xff, 16), data };
  };
  const value: GeneveOpt[] = [];
  const mask: GeneveOpt[] = [];
  for (const opt of s.split(',')) {
    const [v, m, extra] = opt.split('/');
    if (extra !== undefined) bad(`Illegal "geneve_opts": '${opt}'`, 'geneve_opts');
    const o = one(v!);
    value.push(o);
    mask.push(m === undefined ? { class: 0xffff, type: 0xff, data: 'f'.repeat(o.data.length) } : one(m));
  }
  return { value, mask };
}

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
const geneveWord = (o: GeneveOpt) => `${hex(o.class, 4)}:${hex(o.type, 2)}:${o.data}`;
const printGeneve = (g: { value: GeneveOpt[]; mask: GeneveOpt[] }) => g.value.map((o, i) => `${geneveWord(o)}/${geneveWord(g.mask[i]!)}`).join(',');

/**
 * ct_label HEX[/HEX] (f_flower.c flower_parse_ct_labels): up to 32 hex digits read
 * in pairs, a trailing odd digit ignored, the rest of the 16 bytes zero (the
 * mask too: "0102/f" is a zero mask). No 0x prefix.
 */
export function parseLabel(s: string, what: string): Masked<string> {
  const [v, m, extra] = s.split('/');
  if (extra !== undefined) bad(`Illegal "${what}": '${s}'`, what);
  const norm = (x: string) => {
    if (!/^[0-9a-fA-F]{0,32}$/.test(x)) bad(`Illegal "${what}": '${x}' (labels must be a hex string of at most 32 digits)`, what);
    const even = x.slice(0, x.length & ~1).toLowerCase();
    return even.padEnd(32, '0');
  };
  return { value: norm(v!), mask: m === undefined ? 'f'.repeat(32) : norm(m) };
}

/** Keys whose tc keyword takes VALUE[/MASK] of an unsigned integer, with the bases f_flower.c reads value and mask in. */
type Base = 0 | 10 | 16;
const MASKED_UINTS: [string, keyof FlowerMatch, number, Base | 'tos', Base][] = [
  ['ip_tos', 'ipTos', 0xff, 'tos', 16], ['ip_ttl', 'ipTtl', 0xff, 'tos', 16], ['tcp_flags', 'tcpFlags', 0x0fff, 16, 16],
  ['ct_zone', 'ctZone', 0xffff, 0, 0], ['ct_mark', 'ctMark', 0xffffffff, 0, 0],
  ['enc_tos', 'encTos', 0xff, 'tos', 16], ['enc_ttl', 'encTtl', 0xff, 'tos', 16], ['enc_dst_port', 'encDstPort', 0xffff, 10, 10],
];
/** Exact keys, all read with get_u*(..., 10) by f_flower.c. */
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

/** f_flower.c flower_parse_port: decimal PORT[/MASK] (the mask any base) or MIN-MAX. */
function parsePort(s: string, what: string, m: FlowerMatch, side: 'src' | 'dst'): void {
  const r = /^(\d+)-(\d+)$/.exec(s);
  if (r) {
    const min = uint(r[1]!, what, 0xffff, 10), max = uint(r[2]!, what, 0xffff, 10);
    if (!min) bad(`Illegal "${what}": port 0`, what);
    if (min >= max) bad(`Invalid "${what}" range (min must be strictly smaller than max)`, what);
    m[side === 'src' ? 'srcPortRange' : 'dstPortRange'] = { min, max };
  } else {
    const p = maskedUint(s, what, 0xffff, 10, 0);
    // tc 6.1 refuses a bare port 0 ("Illegal dst_port"); 0/MASK is accepted.
    if (!p.value && !s.includes('/')) bad(`Illegal "${what}": port 0`, what);
    m[side === 'src' ? 'srcPort' : 'dstPort'] = p;
  }
}

function unsupported(kw: string): never {
  throw new VpfError(Errno.EOPNOTSUPP, `flower key "${kw}" is not supported by vpf`, kw);
}

/** Parses one key keyword at the token cursor; returns false when the word is not a key. */
export function parseKey(t: Tokens, kw: string, m: FlowerMatch): boolean {
  const x = m as Record<string, unknown>;
  const u = MASKED_UINTS.find(([k]) => k === kw);
  if (u) {
    const [, field, max, base, maskBase] = u;
    const arg = t.next(kw);
    if (kw === 'enc_dst_port' && arg.includes('/')) bad(`Illegal "${kw}": '${arg}' (no mask)`, kw);
    if (base === 'tos') {
      const [v, msk, extra] = arg.split('/');
      if (extra !== undefined) bad(`Illegal "${kw}": '${arg}'`, kw);
      x[field] = { value: decOrHex(v!, kw, max), mask: msk === undefined ? max : uint(msk, `${kw} mask`, max, maskBase) };
    } else x[field] = maskedUint(arg, kw, max, base, maskBase);
    return true;
  }
  const e = EXACT_UINTS.find(([k]) => k === kw);
  if (e) {
    x[e[1]] = uint(t.next(kw), kw, e[2], 10);
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
      // f_flower.c flower_parse_ip_proto: lower-case names (icmp only under IPv4, icmpv6 only under IPv6), else hex.
      const v = t.next(kw);
      const eth = innerEthType(m);
      if ((v === 'icmp' && eth !== 0x0800) || (v === 'icmpv6' && eth !== 0x86dd)) bad(`Illegal "eth_type" for ip proto ${v}`, kw);
      m.ipProto = IP_PROTOS[v] ?? uint(v, kw, 0xff, 16);
      return true;
    }
    case 'src_port':
    case 'dst_port':
      parsePort(t.next(kw), kw, m, kw === 'src_port' ? 'src' : 'dst');
      return true;
    case 'type':
      m.icmpType = maskedUint(t.next(kw), kw, 0xff, 10);
      return true;
    case 'code':
      m.icmpCode = maskedUint(t.next(kw), kw, 0xff, 10);
      return true;
    case 'arp_op': {
      // flower_parse_arp_op: request, reply or a decimal number, then an optional decimal /MASK.
      const [v, msk, extra] = t.next(kw).split('/');
      if (extra !== undefined) bad(`Illegal "${kw}"`, kw);
      // Only ARP's own operations: 0..2 (tc 6.1 answers Illegal "arp_op" to anything above).
      const value = v === 'request' ? 1 : v === 'reply' ? 2 : uint(v!, kw, 2, 10);
      m.arpOp = { value, mask: msk === undefined ? 0xff : uint(msk, `${kw} mask`, 0xff, 10) };
      return true;
    }
    case 'ip_flags':
      m.ipFlags = parseIpFlags(t.next(kw));
      return true;
    case 'ct_state':
      m.ctState = parseCtState(t.next(kw));
      return true;
    case 'ct_label':
      m.ctLabel = parseLabel(t.next(kw), kw);
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

/** ip_proto as tc reads it back: a name where f_flower.c allows it, else hex (its get_u8 base 16). */
function ipProtoWord(p: number, eth: number | undefined): string {
  const name = IP_PROTO_NAMES[p];
  if (name && (name !== 'icmp' || eth === 0x0800) && (name !== 'icmpv6' || eth === 0x86dd)) return name;
  return `0x${p.toString(16)}`;
}

function printRange(r: { min: number; max: number }): string {
  if (r.min === 0) throw new VpfError(Errno.EOPNOTSUPP, 'a port range from 0 has no tc syntax (tc refuses port 0)', 'port');
  return `${r.min}-${r.max}`;
}

/** A port tc reads back: port 0 only in the masked form. */
const printPort = (p: Masked<number>) => (p.value === 0 && p.mask === 0xffff ? '0/0xffff' : printMaskedUint(p, 0xffff));

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
  if (m.ipProto !== undefined) o.push('ip_proto', ipProtoWord(m.ipProto, innerEthType(m)));
  for (const [kw, f] of MASKED_UINTS.slice(0, 2)) if (x[f]) o.push(kw, printMaskedUint(x[f] as Masked<number>, 0xff, true));
  for (const [kw, f] of IPS.slice(0, 2)) if (x[f]) o.push(kw, printMaskedIp(x[f] as Masked<string>));
  if (m.dstPort) o.push('dst_port', printPort(m.dstPort));
  if (m.srcPort) o.push('src_port', printPort(m.srcPort));
  if (m.dstPortRange) o.push('dst_port', printRange(m.dstPortRange));
  if (m.srcPortRange) o.push('src_port', printRange(m.srcPortRange));
  if (m.tcpFlags) o.push('tcp_flags', printMaskedUint(m.tcpFlags, 0x0fff, true));
  if (m.icmpType) o.push('type', printMaskedUint(m.icmpType, 0xff, false, false));
  if (m.icmpCode) o.push('code', printMaskedUint(m.icmpCode, 0xff, false, false));
  for (const [kw, f] of IPS.slice(4)) if (x[f]) o.push(kw, printMaskedIp(x[f] as Masked<string>));
  if (m.arpOp) {
    if (m.arpOp.value > 2) throw new VpfError(Errno.EOPNOTSUPP, `arp_op ${m.arpOp.value} has no tc syntax (request, reply, 0..2)`, 'arp_op');
    o.push('arp_op', printMaskedUint(m.arpOp, 0xff, false, false));
  }
  for (const [kw, f] of MACS.slice(2)) if (x[f]) o.push(kw, printMaskedMac(x[f] as Masked<string>));
  if (m.ipFlags) o.push('ip_flags', printIpFlags(m.ipFlags));
  if (m.ctState) o.push('ct_state', printCtState(m.ctState));
  if (m.ctZone) o.push('ct_zone', printMaskedUint(m.ctZone, 0xffff));
  if (m.ctMark) o.push('ct_mark', printMaskedUint(m.ctMark, 0xffffffff, true));
  if (m.ctLabel) o.push('ct_label', m.ctLabel.mask === 'f'.repeat(32) ? m.ctLabel.value : `${m.ctLabel.value}/${m.ctLabel.mask}`);
  if (m.encKeyId !== undefined) o.push('enc_key_id', String(m.encKeyId));
  for (const [kw, f] of IPS.slice(2, 4)) if (x[f]) o.push(kw, printMaskedIp(x[f] as Masked<string>));
  if (m.encDstPort) {
    // f_flower.c reads enc_dst_port as a bare decimal port: a partial mask has no tc syntax.
    if (m.encDstPort.mask !== 0xffff) throw new VpfError(Errno.EOPNOTSUPP, 'enc_dst_port with a mask has no tc syntax', 'enc_dst_port');
    o.push('enc_dst_port', String(m.encDstPort.value));
  }
  if (m.encTos) o.push('enc_tos', printMaskedUint(m.encTos, 0xff, true));
  if (m.encTtl) o.push('enc_ttl', printMaskedUint(m.encTtl, 0xff));
  if (m.encOpts?.geneve) o.push('geneve_opts', printGeneve(m.encOpts.geneve));
  if (m.encOpts?.vxlanGbp) o.push('vxlan_opts', printMaskedUint(m.encOpts.vxlanGbp, 0xffffffff));
  return o;
}

export { IpProto };
