// Netlink over a byte stream (the guest channel, docs/protocol.md): messages
// back to back, each led by its nlmsghdr, nlmsg_len counting the header, the
// next message at NLMSG_ALIGN(len) (netlink.h). The one framer of vpfd, vpfctl
// and the bench.
import { NLMSG_HDRLEN } from '../rules/netlink/nlmsg.js';

/** A stream that does not frame as netlink within this many bytes is not a guest channel. */
export const MAX_MESSAGE = 1 << 20;

export class NlFramer {
  private buf: Buffer = Buffer.alloc(0);
  /** The bad nlmsg_len at which framing was lost: nothing after it can be trusted. */
  lost: number | undefined;

  /** Adds bytes from the stream; returns the whole messages they complete (each one message, unpadded). */
  push(chunk: Buffer): Buffer[] {
    if (this.lost !== undefined) return [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Buffer[] = [];
    let off = 0;
    while (this.buf.length - off >= NLMSG_HDRLEN) {
      const len = this.buf.readUInt32LE(off);
      if (len < NLMSG_HDRLEN || len > MAX_MESSAGE) {
        this.lost = len;
        break;
      }
      if (this.buf.length - off < len) break;
      out.push(this.buf.subarray(off, off + len));
      off = Math.min(off + ((len + 3) & ~3), this.buf.length);
    }
    this.buf = this.buf.subarray(off);
    return out;
  }
}
