// Token stream and value parsers shared by the tc-syntax codec. Values follow
// iproute2's own parsers (lib/utils.c get_u32 & co., tc_util.c get_rate64 and
// get_size) so a rule typed for `tc` means the same thing here.
import { Errno, VpfError } from '../errors.js';
import { canonicalIp, ipFamily, ipToBytes, bytesToIp, macToBytes, bytesToMac, prefixMask } from '../addr.js';
import type { Masked } from '../model.js';

export class Tokens {
  private i = 0;
  constructor(private readonly t: string[]) {}
  peek(k = 0): string | undefined {
    return this.t[this.i + k];
  }
  next(what: string): string {
    const v = this.t[this.i++];
    if (v === undefined) throw new VpfError(Errno.EINVAL, `"${what}" needs an argument`, what);
    return v;
  }
  take(): string | undefined {
    return this.t[this.i++];
  }
  accept(...words: string[]): string | undefined {
    const v = this.t[this.i];
    if (v !== undefined && words.includes(v)) {
      this.i++;
      return v;
    }
    return undefined;
  }
  get done(): boolean {
    return this.i >= this.t.length;
  }
}

export const bad = (msg: string, tok?: string): never => {
  throw new VpfError(Errno.EINVAL, msg, tok);
};

/** strtoul's digits for a base (lib/utils.c get_u32 & co. reject any trailing character). */
const DIGITS: Record<0 | 10 | 16, RegExp> = { 0: /^(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)$/i, 10: /^([0-9]+|0x[0-9a-f]+)$/i, 16: /^(0x)?[0-9a-f]+$/i };

/**
 * get_u8/u16/u32(&v, s, base): base 0 reads 0x hex, leading-0 octal and
 * decimal; base 10 decimal ("010" is ten); base 16 hex with or without 0x
 * ("10" is sixteen). Each tc keyword uses the base its parser passes
 * (f_flower.c, m_*.c). Where tc wants decimal, vpf also reads 0x hex, which
 * tc refuses but which cannot mean anything else; printFilter never writes it.
 */
export function uint(s: string, what: string, max = 0xffffffff, base: 0 | 10 | 16 = 0): number {
  if (!DIGITS[base].test(s)) return bad(`Illegal "${what}": '${s}'`, what);
  let v: number;
  if (base === 16) v = parseInt(s.replace(/^0x/i, ''), 16);
  else if (base === 10) v = /^0x/i.test(s) ? parseInt(s.slice(2), 16) : parseInt(s, 10);
  else if (/^0x/i.test(s)) v = parseInt(s.slice(2), 16);
  else if (s.length > 1 && s.startsWith('0')) v = parseInt(s, 8);
  else v = Number(s);
  if (v > max) bad(`Illegal "${what}": ${s} exceeds ${max}`, what);
  return v;
}

/** f_flower.c flower_parse_ip_tos_ttl and enc_tos/enc_ttl: decimal, else hex; the mask is hex. */
export function decOrHex(s: string, what: string, max: number): number {
  return DIGITS[10].test(s) ? uint(s, what, max, 10) : uint(s, what, max, 16);
}

/** VALUE[/MASK] for an integer field; each half read in the base tc reads it. */
export function maskedUint(s: string, what: string, max: number, base: 0 | 10 | 16 = 0, maskBase: 0 | 10 | 16 = base): Masked<number> {
  const [v, m, extra] = s.split('/');
  if (extra !== undefined) bad(`Illegal "${what}": '${s}'`, what);
  return { value: uint(v!, what, max, base), mask: m === undefined ? max : uint(m, `${what} mask`, max, maskBase) };
}

/** lib/ll_proto.c llproto_names (iproute2 6.1): ll_proto_a2n matches them case-insensitively, else get_u16 base 0. */
const LL_PROTO: [string, number][] = [
  ['loop', 0x0060], ['pup', 0x0200], ['pupat', 0x0201], ['ip', 0x0800], ['x25', 0x0805], ['arp', 0x0806], ['bpq', 0x08ff],
  ['ieeepup', 0x0a00], ['ieeepupat', 0x0a01], ['dec', 0x6000], ['dna_dl', 0x6001], ['dna_rc', 0x6002], ['dna_rt', 0x6003],
  ['lat', 0x6004], ['diag', 0x6005], ['cust', 0x6006], ['sca', 0x6007], ['rarp', 0x8035], ['atalk', 0x809b], ['aarp', 0x80f3],
  ['ipx', 0x8137], ['ipv6', 0x86dd], ['ppp_disc', 0x8863], ['ppp_ses', 0x8864], ['atmmpoa', 0x884c], ['atmfate', 0x8884],
  ['802_3', 0x0001], ['ax25', 0x0002], ['all', 0x0003], ['802_2', 0x0004], ['snap', 0x0005], ['ddcmp', 0x0006],
  ['wan_ppp', 0x0007], ['ppp_mp', 0x0008], ['localtalk', 0x0009], ['can', 0x000c], ['ppptalk', 0x0010], ['tr_802_2', 0x0011],
  ['mobitex', 0x0015], ['control', 0x0016], ['irda', 0x0017], ['econet', 0x0018], ['tipc', 0x88ca], ['profinet', 0x8892],
  ['aoe', 0x88a2], ['ethercat', 0x88a4], ['802.1Q', 0x8100], ['802.1ad', 0x88a8], ['mpls_uc', 0x8847], ['mpls_mc', 0x8848],
  ['teb', 0x6558], ['LLDP', 0x88cc], ['ipv4', 0x0800],
];

/** ll_proto_a2n. */
export function ethProto(s: string, what: string): number {
  const n = LL_PROTO.find(([name]) => name.toLowerCase() === s.toLowerCase());
  if (n) return n[1];
  return uint(s, what, 0xffff);
}

/** ll_proto_n2a: the first name of the table, else hex (which ll_proto_a2n reads back). */
export function ethProtoName(p: number): string {
  return LL_PROTO.find(([, v]) => v === p)?.[0] ?? `0x${p.toString(16).padStart(4, '0')}`;
}

/** MAC[/MASK|/LEN] (f_flower.c flower_parse_eth_addr). */
export function maskedMac(s: string, what: string): Masked<string> {
  const [a, m] = s.split('/');
  const value = macOrBad(a!, what);
  if (m === undefined) return { value, mask: 'ff:ff:ff:ff:ff:ff' };
  if (/^\d+$/.test(m)) {
    const len = Number(m);
    if (len > 48) bad(`Illegal "${what}" mask length ${m}`, what);
    const b = new Uint8Array(6);
    for (let i = 0; i < len; i++) b[i >> 3]! |= 0x80 >> (i & 7);
    return { value, mask: bytesToMac(b) };
  }
  return { value, mask: macOrBad(m, `${what} mask`) };
}

function macOrBad(s: string, what: string): string {
  try {
    return bytesToMac(macToBytes(s));
  } catch {
    return bad(`Illegal "${what}": '${s}'`, what);
  }
}

/** lib/utils.c get_addr_ipv4: up to four dot-separated parts, each strtoul base 0 (hex, octal), missing ones 0 ("10.1" = 10.1.0.0). */
function iproute2Ipv4(s: string): string | undefined {
  const parts = s.split('.');
  if (parts.length > 4 || parts.some((p) => !DIGITS[0].test(p))) return undefined;
  const bytes = parts.map((p) => uint(p, 'address', 0xffffffff));
  if (bytes.some((b) => b > 255)) return undefined;
  while (bytes.length < 4) bytes.push(0);
  return bytes.join('.');
}

export function ipOrBad(s: string, what: string, family?: 4 | 6): string {
  try {
    const c = s.includes(':') ? canonicalIp(s) : iproute2Ipv4(s);
    if (c === undefined) return bad(`Illegal "${what}": '${s}'`, what);
    if (family && ipFamily(c) !== family) bad(`Illegal "${what}": '${s}' is not IPv${family}`, what);
    return c;
  } catch (e) {
    if (e instanceof VpfError) throw e;
    return bad(`Illegal "${what}": '${s}'`, what);
  }
}

/** ADDR[/LEN|/MASK] (f_flower.c flower_parse_ip_addr via get_prefix: a dotted mask only for IPv4; the address kept as typed). */
export function maskedIp(s: string, what: string, family?: 4 | 6): Masked<string> {
  const [a, m, extra] = s.split('/');
  if (extra !== undefined) bad(`Illegal "${what}": '${s}'`, what);
  const value = ipOrBad(a!, what, family);
  const fam = ipFamily(value);
  if (m === undefined) return { value, mask: prefixMask(fam, fam === 4 ? 32 : 128) };
  if (/^\d+$/.test(m)) {
    const len = Number(m);
    if (len > (fam === 4 ? 32 : 128)) bad(`Illegal "${what}" prefix length ${m}`, what);
    return { value, mask: prefixMask(fam, len) };
  }
  if (fam === 6) bad(`Illegal "${what}": an IPv6 mask is a prefix length, not '${m}'`, what);
  return { value, mask: ipOrBad(m, `${what} mask`, fam) };
}

/** Prints ADDR[/LEN or /MASK], the shortest form that parses back to the same value and mask. */
export function printMaskedIp(v: Masked<string>): string {
  const fam = ipFamily(v.value);
  const mb = ipToBytes(v.mask);
  let len = 0;
  while (len < mb.length * 8 && mb[len >> 3]! & (0x80 >> (len & 7))) len++;
  const isPrefix = bytesToIp(ipToBytes(prefixMask(fam, len))) === bytesToIp(mb);
  if (isPrefix && len === mb.length * 8) return v.value;
  return `${v.value}/${isPrefix ? len : v.mask}`;
}

export function printMaskedMac(v: Masked<string>): string {
  return v.mask === 'ff:ff:ff:ff:ff:ff' ? v.value : `${v.value}/${v.mask}`;
}

/** VALUE[/MASK] in forms the keyword's parser reads back: hex (0x..) or decimal for each half. */
export function printMaskedUint(v: Masked<number>, max: number, hex = false, maskHex = true): string {
  const f = (x: number, h: boolean) => (h ? `0x${x.toString(16)}` : String(x));
  return v.mask === max ? f(v.value, hex) : `${f(v.value, hex)}/${f(v.mask, maskHex)}`;
}

// --- rates and sizes (tc_util.c) ---
const RATE_UNITS: [string, number][] = [
  ['bit', 1], ['kbit', 1000], ['mbit', 1e6], ['gbit', 1e9], ['tbit', 1e12],
  ['kibit', 1024], ['mibit', 1024 ** 2], ['gibit', 1024 ** 3], ['tibit', 1024 ** 4],
  ['bps', 8], ['kbps', 8000], ['mbps', 8e6], ['gbps', 8e9], ['tbps', 8e12],
  ['kibps', 8 * 1024], ['mibps', 8 * 1024 ** 2], ['gibps', 8 * 1024 ** 3], ['tibps', 8 * 1024 ** 4],
];

/** get_rate64: a rate with units, in bytes per second. A bare number is bits per second. */
export function rate(s: string, what: string): number {
  const m = /^([0-9]*\.?[0-9]+)([a-zA-Z]*)$/.exec(s);
  if (!m) return bad(`Illegal "${what}": '${s}'`, what);
  const unit = m[2]!.toLowerCase() || 'bit';
  const mult = RATE_UNITS.find(([u]) => u === unit)?.[1];
  if (mult === undefined) return bad(`Illegal "${what}" unit: '${s}'`, what);
  return Math.floor((Number(m[1]) * mult) / 8);
}

/** get_size: bytes; k/m/g are powers of 1024, kbit/mbit... are bits. */
export function size(s: string, what: string): number {
  const m = /^([0-9]*\.?[0-9]+)([a-zA-Z]*)$/.exec(s);
  if (!m) return bad(`Illegal "${what}": '${s}'`, what);
  const u = m[2]!.toLowerCase();
  const mult: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, kbit: 1024 / 8, mbit: 1024 ** 2 / 8, gbit: 1024 ** 3 / 8 };
  const k = mult[u];
  if (k === undefined) return bad(`Illegal "${what}" unit: '${s}'`, what);
  return Math.floor(Number(m[1]) * k);
}

/** Rates print as whole bits per second with `bit`, which parses back exactly. */
export const printRate = (bytesPerSec: number) => `${bytesPerSec * 8}bit`;
