// Canonical address forms shared by every codec: the model stores strings so
// rules are JSON, and these helpers are the one place that converts to bytes.

export type Family = 4 | 6;

export function macToBytes(s: string): Uint8Array {
  const m = /^([0-9a-fA-F]{1,2})(?::([0-9a-fA-F]{1,2})){5}$/.test(s) ? s.split(':') : null;
  if (!m) throw new Error(`bad MAC address '${s}'`);
  return Uint8Array.from(m.map((h) => parseInt(h, 16)));
}

export function bytesToMac(b: Uint8Array): string {
  if (b.length !== 6) throw new Error('MAC needs 6 bytes');
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Dotted quad, each part 0 or 1-255 without leading zeros; a hand loop, since every rule's addresses pass here. */
export function ipv4ToBytes(s: string): Uint8Array {
  const out = new Uint8Array(4);
  let part = 0, value = 0, digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; // the end closes the last part like a '.'
    if (c === 46) {
      if (!digits || part > 3) throw new Error(`bad IPv4 address '${s}'`);
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && !(digits === 1 && value === 0) && (value = value * 10 + c - 48) <= 255) digits++;
    else throw new Error(`bad IPv4 address '${s}'`);
  }
  if (part !== 4) throw new Error(`bad IPv4 address '${s}'`);
  return out;
}

export function bytesToIpv4(b: Uint8Array): string {
  if (b.length !== 4) throw new Error('IPv4 needs 4 bytes');
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

export function ipv6ToBytes(s: string): Uint8Array {
  let str = s;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(?:^|:)(\d+\.\d+\.\d+\.\d+)$/.exec(str);
  if (v4 && v4[1]) {
    const b = ipv4ToBytes(v4[1]);
    const g = (x: number, y: number) => ((x << 8) | y).toString(16);
    str = str.slice(0, str.length - v4[1].length) + g(b[0]!, b[1]!) + ':' + g(b[2]!, b[3]!);
  }
  const halves = str.split('::');
  if (halves.length > 2) throw new Error(`bad IPv6 address '${s}'`);
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (![...head, ...rest].every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) throw new Error(`bad IPv6 address '${s}'`);
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) throw new Error(`bad IPv6 address '${s}'`);
  const words = [...head, ...new Array<string>(8 - total).fill('0'), ...rest].map((g) => parseInt(g, 16));
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (>1) of zero groups as '::'. */
export function bytesToIpv6(b: Uint8Array): string {
  if (b.length !== 16) throw new Error('IPv6 needs 16 bytes');
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (x: number) => x.toString(16);
  if (best < 0) return w.map(hex).join(':');
  return w.slice(0, best).map(hex).join(':') + '::' + w.slice(best + bestLen).map(hex).join(':');
}

export function ipFamily(s: string): Family {
  return s.includes(':') ? 6 : 4;
}

export function ipToBytes(s: string): Uint8Array {
  return ipFamily(s) === 6 ? ipv6ToBytes(s) : ipv4ToBytes(s);
}

export function bytesToIp(b: Uint8Array): string {
  return b.length === 16 ? bytesToIpv6(b) : bytesToIpv4(b);
}

/** A prefix-length mask of the family (`/24` -> 255.255.255.0). */
export function prefixMask(family: Family, len: number): string {
  const n = family === 4 ? 4 : 16;
  if (!Number.isInteger(len) || len < 0 || len > n * 8) throw new Error(`bad prefix length ${len}`);
  const b = new Uint8Array(n);
  for (let i = 0; i < len; i++) b[i >> 3]! |= 0x80 >> (i & 7);
  return bytesToIp(b);
}

/** The prefix length of a contiguous mask, or -1 if the mask has holes. */
export function maskPrefixLen(bytes: Uint8Array): number {
  let len = 0, i = 0;
  for (; i < bytes.length && bytes[i] === 0xff; i++) len += 8;
  if (i === bytes.length) return len;
  const x = bytes[i]!;
  let bits = 0;
  while (bits < 8 && x & (0x80 >> bits)) bits++;
  if (((x << bits) & 0xff) !== 0) return -1;
  for (let j = i + 1; j < bytes.length; j++) if (bytes[j] !== 0) return -1;
  return len + bits;
}

export const macMaskAll = 'ff:ff:ff:ff:ff:ff';

/** Canonical form of whatever address string (MAC or IP) the input spelled. */
export function canonicalIp(s: string): string {
  return bytesToIp(ipToBytes(s));
}

export function hexToBytes(h: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})*$/.test(h)) throw new Error(`bad hex string '${h}'`);
  return Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
}

export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
