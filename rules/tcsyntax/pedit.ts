// pedit "ex munge" fields as iproute2 packs them into 32-bit key words
// (tc/m_pedit.c pack_key8/16/32, tc/p_eth.c, p_ip.c, p_ip6.c, p_tcp.c, p_udp.c):
// a field at byte offset `off` of size n sits in the word at off & ~3, shifted
// left by 8 * (4 - n - (off & 3)); `mask` holds the bits the key keeps.
import { bytesToIp, bytesToMac, ipToBytes, macToBytes } from '../addr.js';
import type { PeditHtype, PeditKey } from '../model.js';
import { bad, ipOrBad, uint, type Tokens } from './lex.js';

interface Field {
  htype: PeditHtype;
  /** tc's header word (eth, ip, ip6, tcp, udp) and field name. */
  hdr: string;
  name: string;
  off: number;
  len: number;
  kind: 'mac' | 'ip4' | 'ip6' | 'uint';
  /** Accepts `dec` (ip ttl, ip6 hoplimit): an add of 0xff that wraps, as iproute2 encodes it. */
  dec?: boolean;
}

const FIELDS: Field[] = [
  { htype: 'eth', hdr: 'eth', name: 'dst', off: 0, len: 6, kind: 'mac' },
  { htype: 'eth', hdr: 'eth', name: 'src', off: 6, len: 6, kind: 'mac' },
  { htype: 'eth', hdr: 'eth', name: 'type', off: 12, len: 2, kind: 'uint' },
  { htype: 'ip4', hdr: 'ip', name: 'src', off: 12, len: 4, kind: 'ip4' },
  { htype: 'ip4', hdr: 'ip', name: 'dst', off: 16, len: 4, kind: 'ip4' },
  { htype: 'ip4', hdr: 'ip', name: 'tos', off: 1, len: 1, kind: 'uint' },
  // p_ip.c: dsfield is another name for the tos byte.
  { htype: 'ip4', hdr: 'ip', name: 'dsfield', off: 1, len: 1, kind: 'uint' },
  { htype: 'ip4', hdr: 'ip', name: 'ttl', off: 8, len: 1, kind: 'uint', dec: true },
  { htype: 'ip4', hdr: 'ip', name: 'protocol', off: 9, len: 1, kind: 'uint' },
  { htype: 'ip6', hdr: 'ip6', name: 'src', off: 8, len: 16, kind: 'ip6' },
  { htype: 'ip6', hdr: 'ip6', name: 'dst', off: 24, len: 16, kind: 'ip6' },
  { htype: 'ip6', hdr: 'ip6', name: 'hoplimit', off: 7, len: 1, kind: 'uint', dec: true },
  { htype: 'tcp', hdr: 'tcp', name: 'sport', off: 0, len: 2, kind: 'uint' },
  { htype: 'tcp', hdr: 'tcp', name: 'dport', off: 2, len: 2, kind: 'uint' },
  { htype: 'udp', hdr: 'udp', name: 'sport', off: 0, len: 2, kind: 'uint' },
  { htype: 'udp', hdr: 'udp', name: 'dport', off: 2, len: 2, kind: 'uint' },
];

/** Splits `bytes` at header offset `off` into key words (set: keep nothing of the field). */
function packBytes(f: Field, bytes: Uint8Array, cmd: 'set' | 'add', retain?: number): PeditKey[] {
  const keys: PeditKey[] = [];
  for (let i = 0; i < bytes.length; ) {
    const pos = f.off + i;
    const word = pos & ~3;
    const inWord = Math.min(4 - (pos & 3), bytes.length - i);
    let val = 0, mask = 0xffffffff;
    for (let j = 0; j < inWord; j++) {
      const shift = 8 * (3 - ((pos & 3) + j));
      const r = retain === undefined ? 0xff : (retain >>> (8 * (inWord - 1 - j))) & 0xff;
      val |= (bytes[i + j]! & r) << shift;
      mask &= ~(r << shift);
    }
    keys.push({ htype: f.htype, cmd, offset: word, mask: mask >>> 0, value: val >>> 0 });
    i += inWord;
  }
  return keys;
}

function uintBytes(v: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (v >>> (8 * (len - 1 - i))) & 0xff;
  return b;
}

/** Parses `HDR FIELD set|add|dec VAL [retain MASK]` after `munge`. */
export function parseMunge(t: Tokens): PeditKey[] {
  const hdr = t.next('munge');
  if (hdr === 'offset') return bad('pedit: raw "munge offset" keys are not supported; use a named field', 'pedit');
  const name = t.next(hdr);
  const f = FIELDS.find((x) => x.hdr === hdr && x.name === name);
  if (!f) return bad(`pedit: unknown or unsupported field "${hdr} ${name}"`, 'pedit');
  const op = t.next(`${hdr} ${name}`);
  if (op === 'dec') {
    if (!f.dec) return bad(`pedit: "${hdr} ${name}" cannot be decremented`, 'pedit');
    return packBytes(f, uintBytes(0xff, 1), 'add');
  }
  if (op !== 'set' && op !== 'add') return bad(`pedit: expected set, add or dec, got "${op}"`, 'pedit');
  const raw = t.next(op);
  let bytes: Uint8Array;
  if (f.kind === 'mac') bytes = macToBytes(raw);
  else if (f.kind === 'ip4' || f.kind === 'ip6') bytes = ipToBytes(ipOrBad(raw, `${hdr} ${name}`, f.kind === 'ip4' ? 4 : 6));
  else bytes = uintBytes(uint(raw, `${hdr} ${name}`, 2 ** (8 * f.len) - 1), f.len);
  let retain: number | undefined;
  if (t.accept('retain')) {
    if (f.kind !== 'uint') return bad('pedit: retain applies to numeric fields only', 'pedit');
    retain = uint(t.next('retain'), 'retain', 2 ** (8 * f.len) - 1);
  }
  return packBytes(f, bytes, op, retain);
}

/** Prints keys as `munge` ops when they are exactly what parseMunge makes for a field; undefined otherwise. */
export function printMunge(keys: PeditKey[]): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  outer: while (i < keys.length) {
    fields: for (const f of FIELDS) {
      if (keys[i]!.htype !== f.htype) continue;
      const n = packBytes(f, new Uint8Array(f.len), 'set').length;
      const group = keys.slice(i, i + n);
      if (group.length !== n) continue;
      const cmd = group[0]!.cmd;
      if (group.some((k) => k.cmd !== cmd)) continue;
      // Read the field bytes back out of the words.
      const bytes = new Uint8Array(f.len);
      let retain = 0;
      for (let j = 0; j < f.len; j++) {
        const pos = f.off + j;
        const k = group.find((x) => x.offset === (pos & ~3));
        if (!k) continue fields;
        const shift = 8 * (3 - (pos & 3));
        bytes[j] = (k.value >>> shift) & 0xff;
        retain = (retain << 8) | (~(k.mask >>> shift) & 0xff);
      }
      retain >>>= 0;
      const full = f.len >= 4 ? 0xffffffff : 2 ** (8 * f.len) - 1;
      const isDec = cmd === 'add' && f.dec && f.len === 1 && bytes[0] === 0xff && retain === 0xff;
      const text = isDec
        ? [f.hdr, f.name, 'dec']
        : [f.hdr, f.name, cmd, f.kind === 'mac' ? bytesToMac(bytes) : f.kind === 'uint' ? String(bytes.reduce((a, b) => a * 256 + b, 0)) : bytesToIp(bytes)];
      if (!isDec && f.kind === 'uint' && retain !== full) text.push('retain', `0x${retain.toString(16)}`);
      // Only accept the reading if packing it reproduces the keys exactly.
      const repacked = isDec
        ? packBytes(f, uintBytes(0xff, 1), 'add')
        : packBytes(f, bytes, cmd, f.kind === 'uint' && retain !== full ? retain : undefined);
      if (JSON.stringify(repacked) !== JSON.stringify(group)) continue;
      out.push('munge', ...text);
      i += n;
      continue outer;
    }
    return undefined;
  }
  return out;
}
