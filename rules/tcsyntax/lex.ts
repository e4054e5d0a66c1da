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

/** get_u32 with base 0: decimal, 0x hex, leading-0 octal. */
export function uint(s: string, what: string, max = 0xffffffff): number {
  let v: number;
  if (/^0x[0-9a-fA-F]+$/.test(s)) v = parseInt(s, 16);
  else if (/^0[0-7]+$/.test(s)) v = parseInt(s, 8);
  else if (/^(0|[1-9][0-9]*)$/.test(s)) v = Number(s);
  else return bad(`Illegal "${what}": '${s}'`, what);
  if (v > max) bad(`Illegal "${what}": ${s} exceeds ${max}`, what);
  return v;
}

/** VALUE[/MASK] for an integer field of `bits` width. */
export function maskedUint(s: string, what: string, max: number): Masked<number> {
  const [v, m] = s.split('/');
  return { value: uint(v!, what, max), mask: m === undefined ? max : uint(m, `${what} mask`, max) };
}

export const PROTOCOLS: Record<string, number> = {
  all: 0x0003,
  ip: 0x0800,
  ipv6: 0x86dd,
  arp: 0x0806,
  rarp: 0x8035,
  '802.1q': 0x8100,
  '802.1ad': 0x88a8,
  mpls_uc: 0x8847,
  mpls_mc: 0x8848,
};
const PROTO_NAMES: Record<number, string> = { 0x0003: 'all', 0x0800: 'ip', 0x86dd: 'ipv6', 0x0806: 'arp', 0x8035: 'rarp', 0x8100: '802.1Q', 0x88a8: '802.1ad', 0x8847: 'mpls_uc', 0x8848: 'mpls_mc' };

/** ll_proto_a2n: a name from /etc/protocols-like table or a number. */
export function ethProto(s: string, what: string): number {
  const n = PROTOCOLS[s.toLowerCase()];
  if (n !== undefined) return n;
  return uint(s, what, 0xffff);
}

export function ethProtoName(p: number): string {
  return PROTO_NAMES[p] ?? `0x${p.toString(16).padStart(4, '0')}`;
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

export function ipOrBad(s: string, what: string, family?: 4 | 6): string {
  try {
    const c = canonicalIp(s);
    if (family && ipFamily(c) !== family) bad(`Illegal "${what}": '${s}' is not IPv${family}`, what);
    return c;
  } catch (e) {
    if (e instanceof VpfError) throw e;
    return bad(`Illegal "${what}": '${s}'`, what);
  }
}

/** ADDR[/LEN|/MASK] (f_flower.c flower_parse_ip_addr: the address is kept as typed, the mask from the length). */
export function maskedIp(s: string, what: string, family?: 4 | 6): Masked<string> {
  const [a, m] = s.split('/');
  const value = ipOrBad(a!, what, family);
  const fam = ipFamily(value);
  if (m === undefined) return { value, mask: prefixMask(fam, fam === 4 ? 32 : 128) };
  if (/^\d+$/.test(m)) {
    const len = Number(m);
    if (len > (fam === 4 ? 32 : 128)) bad(`Illegal "${what}" prefix length ${m}`, what);
    return { value, mask: prefixMask(fam, len) };
  }
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

export function printMaskedUint(v: Masked<number>, max: number, hex = false): string {
  const f = (x: number) => (hex ? `0x${x.toString(16)}` : String(x));
  return v.mask === max ? f(v.value) : `${f(v.value)}/0x${v.mask.toString(16)}`;
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
