// A VM's guest channels as a transport: unix stream sockets carrying netlink
// messages framed by nlmsghdr (docs/protocol.md), one socket per netlink
// protocol. Messages from every connection of the VM wait in one inbox and are
// handed over in order; runs of batchable requests go together (group commit),
// replies go back to the connection each request came on, addressed and
// acknowledged as af_netlink.c netlink_rcv_skb does (answer()).
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, rmSync } from 'node:fs';
import { NlFramer } from './nlstream.js';
import { buildError, NLMSG_HDRLEN, NlmF, NlmsgType, parseMessages, type NlMessage } from '../rules/netlink/nlmsg.js';

/** NETLINK_ROUTE (tc, links) or NETLINK_GENERIC (devlink): in the guest these are separate sockets. */
export type Proto = 'route' | 'genl';

/** include/uapi/linux/netlink.h: types below this are control messages, never handed to a family. */
const NLMSG_MIN_TYPE = 0x10;

export interface ChannelHandler {
  /** Whether a message may share a commit with its neighbours. */
  batchable(msg: NlMessage, proto: Proto): boolean;
  /** One request -> its replies (a success is answered with an ACK; answer() drops it when no ACK was asked for). */
  handle(msg: NlMessage, proto: Proto): Promise<Buffer[]>;
  /** A run of batchable requests -> their replies, in order. */
  handleBatch(msgs: NlMessage[]): Promise<Buffer[][]>;
  /** A connection whose framing was lost (it is closed once what came before is answered). */
  framingLost(len: number): void;
}

interface Pending {
  msg: NlMessage;
  proto: Proto;
  reply(parts: Buffer[]): void;
}

/** A connection to close once everything queued before it was answered. */
interface Closing {
  close(): void;
}

const isClosing = (p: Pending | Closing): p is Closing => 'close' in p;

/**
 * What goes back for one request, as netlink_rcv_skb and netlink_ack send it:
 * every message addressed to the requester's port id (C1: the forwarder writes
 * it into the request's nlmsg_pid; the kernel uses NETLINK_CB(skb).portid), and
 * a trailing ACK when NLM_F_ACK was asked for and the answer is neither an
 * error nor a dump (C2). A successful request without NLM_F_ACK gets its reply
 * messages only (none for a change), as the kernel sends nothing then.
 */
export function answer(msg: NlMessage, parts: Buffer[]): Buffer[] {
  const out = parts.slice();
  const last = out.length ? lastHeader(out[out.length - 1]!) : undefined;
  const ack = (msg.flags & NlmF.ACK) !== 0;
  if (last?.type === NlmsgType.ERROR && last.errno === 0 && !ack) out.pop();
  else if (ack && last?.type !== NlmsgType.ERROR && last?.type !== NlmsgType.DONE) out.push(buildError(msg, 0));
  for (const b of out) stampPid(b, msg.pid);
  return out;
}

/** Type (and errno of an NLMSG_ERROR) of the last message in a buffer of whole messages. */
function lastHeader(b: Buffer): { type: number; errno: number } | undefined {
  let off = 0;
  let at: number | undefined;
  while (off + NLMSG_HDRLEN <= b.length) {
    at = off;
    off += (b.readUInt32LE(off) + 3) & ~3;
  }
  if (at === undefined) return undefined;
  const type = b.readUInt16LE(at + 4);
  return { type, errno: type === NlmsgType.ERROR && b.length >= at + 20 ? b.readInt32LE(at + 16) : 0 };
}

function stampPid(b: Buffer, pid: number): void {
  for (let off = 0; off + NLMSG_HDRLEN <= b.length; off += (b.readUInt32LE(off) + 3) & ~3) b.writeUInt32LE(pid >>> 0, off + 12);
}

/**
 * Writes a request's replies. Corked until the current tick ends, so the replies of a
 * whole batch (answered in one synchronous loop) leave in one writev, not one write each.
 */
function send(sock: Socket, replies: Buffer[]): void {
  sock.cork();
  for (const r of replies) sock.write(r);
  process.nextTick(() => sock.uncork());
}

export class GuestChannels {
  private readonly servers: Server[] = [];
  private readonly inbox: (Pending | Closing)[] = [];
  private pumping = false;

  constructor(
    private readonly handler: ChannelHandler,
    /** Most requests committed together. */
    private readonly maxBatch = 20_000,
  ) {}

  async listen(path: string, proto: Proto): Promise<void> {
    rmSync(path, { force: true });
    const server = createServer((sock) => this.serve(sock, proto));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        chmodSync(path, 0o600);
        resolve();
      });
    });
    this.servers.push(server);
  }

  close(): void {
    for (const s of this.servers) s.close();
  }

  private serve(sock: Socket, proto: Proto): void {
    const framer = new NlFramer();
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: Buffer) => {
      if (framer.lost !== undefined) return;
      for (const b of framer.push(chunk)) {
        const msg = parseMessages(b)[0]!;
        this.inbox.push({ msg, proto, reply: (parts) => !sock.destroyed && send(sock, answer(msg, parts)) });
      }
      if (framer.lost !== undefined) {
        // The stream no longer frames: nothing after this point can be trusted. The requests
        // before it are answered (netlink_rcv_skb handles a datagram's whole messages), then
        // this connection alone is closed.
        this.handler.framingLost(framer.lost);
        this.inbox.push({ close: () => sock.end() });
      }
      void this.pump();
    });
  }

  /** What the channel does before a handler sees a message (netlink_rcv_skb): non-requests and control types are only acked. */
  private async dispatch(p: Pending): Promise<Buffer[]> {
    if (!(p.msg.flags & NlmF.REQUEST) || p.msg.type < NLMSG_MIN_TYPE) return [buildError(p.msg, 0)];
    return this.handler.handle(p.msg, p.proto);
  }

  /**
   * Group commit: batchable requests waiting in the inbox go to the handler as
   * one batch, replies in request order. A guest that pipelines requests pays
   * per batch, not per request; one that waits for each ack sees single-request
   * batches.
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.inbox.length) {
        const head = this.inbox[0]!;
        if (isClosing(head)) {
          this.inbox.shift();
          head.close();
          continue;
        }
        let n = 0;
        for (; n < this.inbox.length && n < this.maxBatch; n++) {
          const p = this.inbox[n]!;
          if (isClosing(p) || !(p.msg.flags & NlmF.REQUEST) || !this.handler.batchable(p.msg, p.proto)) break;
        }
        const batch = this.inbox.splice(0, Math.max(n, 1)) as Pending[];
        if (batch.length === 1) {
          const p = batch[0]!;
          p.reply(await this.dispatch(p));
        } else {
          const replies = await this.handler.handleBatch(batch.map((p) => p.msg));
          batch.forEach((p, i) => p.reply(replies[i]!));
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
