// Netlink plumbing: nlmsghdr framing, TLV attributes, NLMSG_ERROR with extack.
// Layouts from include/uapi/linux/netlink.h; lengths checked the way
// lib/nlattr.c (__nla_validate) and af_netlink.c check them, so a lying or
// truncated message is a typed error, never an exception or a hang.
import { Errno, VpfError } from '../errors.js';

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;
/** The kernel's nesting limit for policy validation (lib/nlattr.c MAX_POLICY_RECURSION_DEPTH). */
export const MAX_NEST_DEPTH = 10;

export const NlmsgType = {
  NOOP: 1,
  ERROR: 2,
  DONE: 3,
  OVERRUN: 4,
} as const;

export const Rtm = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWQDISC: 36,
  DELQDISC: 37,
  GETQDISC: 38,
  NEWTFILTER: 44,
  DELTFILTER: 45,
  GETTFILTER: 46,
  NEWCHAIN: 100,
  DELCHAIN: 101,
  GETCHAIN: 102,
} as const;

export const NlmF = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  ECHO: 0x8,
  DUMP_INTR: 0x10,
  // GET modifiers
  ROOT: 0x100,
  MATCH: 0x200,
  DUMP: 0x300,
  // NEW modifiers
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
  // ACK flags
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
} as const;

export const NlmsgErrAttr = { MSG: 1, OFFS: 2, COOKIE: 3 } as const;

export const align4 = (n: number) => (n + 3) & ~3;

export interface NlHeader {
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

export interface NlMessage extends NlHeader {
  /** Everything after the 16-byte header, up to nlmsg_len. */
  payload: Buffer;
}

/**
 * Splits a buffer holding whole netlink messages. Lengths that point past the
 * buffer or below the header are EBADMSG (af_netlink.c netlink_rcv_skb).
 */
export function parseMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) throw new VpfError(Errno.EBADMSG, `truncated netlink header (${buf.length - off} bytes)`);
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || len > buf.length - off) {
      throw new VpfError(Errno.EBADMSG, `netlink message length ${len} does not fit the ${buf.length - off} bytes received`);
    }
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

export function buildMessage(hdr: NlHeader, payload: Buffer): Buffer {
  const len = NLMSG_HDRLEN + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(hdr.type, 4);
  out.writeUInt16LE(hdr.flags, 6);
  out.writeUInt32LE(hdr.seq >>> 0, 8);
  out.writeUInt32LE(hdr.pid >>> 0, 12);
  payload.copy(out, NLMSG_HDRLEN);
  return out;
}

/** One attribute: type without the NESTED/BYTEORDER bits, and its value bytes. */
export interface Attr {
  type: number;
  nested: boolean;
  value: Buffer;
  /** Offset of the attribute header within the buffer it was read from (for extack OFFS). */
  offset: number;
}

/** Reads the TLVs of `buf`; a length that lies is EINVAL naming `where` (nla_ok semantics). */
export function parseAttrs(buf: Buffer, where: string, baseOffset = 0): Attr[] {
  const out: Attr[] = [];
  let off = 0;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN || len > buf.length - off) {
      throw new VpfError(Errno.EINVAL, `${where}: attribute type ${rawType & NLA_TYPE_MASK} has length ${len}, ${buf.length - off} bytes left`);
    }
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      value: buf.subarray(off + NLA_HDRLEN, off + len),
      offset: baseOffset + off,
    });
    off += align4(len);
  }
  // Trailing bytes shorter than a header: the kernel warns and ignores them ("bytes leftover").
  return out;
}

/** Attributes by type; a duplicate keeps the last one, as nla_parse does. */
export function attrMap(attrs: Attr[]): Map<number, Attr> {
  const m = new Map<number, Attr>();
  for (const a of attrs) m.set(a.type, a);
  return m;
}

/** Fixed-size reads that fail with the attribute's name when the length is wrong (nla_policy .len / NLA_U*). */
export const read = {
  u8(a: Attr, name: string): number {
    need(a, name, 1);
    return a.value.readUInt8(0);
  },
  u16(a: Attr, name: string): number {
    need(a, name, 2);
    return a.value.readUInt16LE(0);
  },
  be16(a: Attr, name: string): number {
    need(a, name, 2);
    return a.value.readUInt16BE(0);
  },
  u32(a: Attr, name: string): number {
    need(a, name, 4);
    return a.value.readUInt32LE(0);
  },
  be32(a: Attr, name: string): number {
    need(a, name, 4);
    return a.value.readUInt32BE(0);
  },
  u64(a: Attr, name: string): bigint {
    need(a, name, 8);
    return a.value.readBigUInt64LE(0);
  },
  bytes(a: Attr, name: string, n: number): Buffer {
    need(a, name, n);
    return a.value.subarray(0, n);
  },
  /** NLA_BINARY with a maximum length: shorter values are zero-padded to `n`, as fl_set_key_val copies nla_len bytes into a zeroed key. */
  binaryUpTo(a: Attr, name: string, n: number): Buffer {
    if (a.value.length > n) throw new VpfError(Errno.EINVAL, `${name}: length ${a.value.length}, at most ${n}`, name);
    const b = Buffer.alloc(n);
    a.value.copy(b);
    return b;
  },
  /** NLA_NUL_STRING / NLA_STRING: up to the first NUL, at most `max` bytes. */
  string(a: Attr, name: string, max: number): string {
    const end = a.value.indexOf(0);
    const s = a.value.subarray(0, end < 0 ? a.value.length : end);
    if (s.length === 0 || s.length > max) throw new VpfError(Errno.EINVAL, `${name}: string of ${s.length} bytes (1..${max} allowed)`, name);
    return s.toString('latin1');
  },
};

function need(a: Attr, name: string, n: number): void {
  // The kernel's strict policy (NLA_POLICY exact) rejects both short and long values.
  if (a.value.length !== n) throw new VpfError(Errno.EINVAL, `${name}: length ${a.value.length}, expected ${n}`, name);
}

/** Builds attributes; nests are opened and closed around a callback. */
export class AttrWriter {
  private chunks: Buffer[] = [];
  private size = 0;

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  raw(type: number, value: Buffer): this {
    const len = NLA_HDRLEN + value.length;
    const b = Buffer.alloc(align4(len));
    b.writeUInt16LE(len, 0);
    b.writeUInt16LE(type, 2);
    value.copy(b, NLA_HDRLEN);
    this.push(b);
    return this;
  }
  u8(type: number, v: number): this {
    return this.raw(type, Buffer.from([v & 0xff]));
  }
  u16(type: number, v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return this.raw(type, b);
  }
  be16(type: number, v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return this.raw(type, b);
  }
  u32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.raw(type, b);
  }
  be32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return this.raw(type, b);
  }
  u64(type: number, v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return this.raw(type, b);
  }
  string(type: number, s: string): this {
    return this.raw(type, Buffer.concat([Buffer.from(s, 'latin1'), Buffer.alloc(1)]));
  }
  flag(type: number): this {
    return this.raw(type, Buffer.alloc(0));
  }
  /** A nested attribute. `flagged` sets NLA_F_NESTED (iproute2's addattr_nest does not; the kernel's dumps do not either). */
  nest(type: number, body: (w: AttrWriter) => void, flagged = false): this {
    const inner = new AttrWriter();
    body(inner);
    return this.raw(flagged ? type | NLA_F_NESTED : type, inner.toBuffer());
  }
  get length(): number {
    return this.size;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

/**
 * NLMSG_ERROR reply (errno 0 = ACK) for `req`, with extack: the original
 * header only (NLM_F_CAPPED) plus NLMSGERR_ATTR_MSG, as the kernel sends when
 * the socket has NETLINK_EXT_ACK and NETLINK_CAP_ACK set (netlink_ack()).
 */
export function buildError(req: NlHeader & { payload?: Buffer }, errno: number, message?: string, pid = 0): Buffer {
  const body = Buffer.alloc(4 + NLMSG_HDRLEN);
  body.writeInt32LE(-Math.abs(errno), 0);
  const reqLen = NLMSG_HDRLEN + (req.payload?.length ?? 0);
  body.writeUInt32LE(reqLen, 4);
  body.writeUInt16LE(req.type, 8);
  body.writeUInt16LE(req.flags, 10);
  body.writeUInt32LE(req.seq >>> 0, 12);
  body.writeUInt32LE(req.pid >>> 0, 16);
  let flags = NlmF.CAPPED;
  let tlvs: Buffer = Buffer.alloc(0);
  if (message) {
    flags |= NlmF.ACK_TLVS;
    tlvs = new AttrWriter().string(NlmsgErrAttr.MSG, message).toBuffer();
  }
  return buildMessage({ type: NlmsgType.ERROR, flags, seq: req.seq, pid }, Buffer.concat([body, tlvs]));
}

export interface NlErrorReply {
  errno: number;
  message?: string;
  /** Header of the request this answers. */
  request: NlHeader;
}

export function parseError(msg: NlMessage): NlErrorReply {
  if (msg.type !== NlmsgType.ERROR || msg.payload.length < 4 + NLMSG_HDRLEN) {
    throw new VpfError(Errno.EBADMSG, 'not an NLMSG_ERROR message');
  }
  const errno = 0 - msg.payload.readInt32LE(0);
  const request = {
    type: msg.payload.readUInt16LE(8),
    flags: msg.payload.readUInt16LE(10),
    seq: msg.payload.readUInt32LE(12),
    pid: msg.payload.readUInt32LE(16),
  };
  let message: string | undefined;
  if (msg.flags & NlmF.ACK_TLVS) {
    const reqLen = msg.payload.readUInt32LE(4);
    const skip = msg.flags & NlmF.CAPPED ? NLMSG_HDRLEN : align4(reqLen);
    const attrs = attrMap(parseAttrs(msg.payload.subarray(4 + skip), 'extack'));
    const m = attrs.get(NlmsgErrAttr.MSG);
    if (m) message = read.string(m, 'NLMSGERR_ATTR_MSG', 4096);
  }
  return { errno, request, ...(message !== undefined ? { message } : {}) };
}

export function buildDone(seq: number, pid = 0): Buffer {
  const b = Buffer.alloc(4);
  return buildMessage({ type: NlmsgType.DONE, flags: NlmF.MULTI, seq, pid }, b);
}
