// A VM's guest channels as a transport: unix stream sockets carrying netlink
// messages framed by nlmsghdr (docs/protocol.md), one socket per netlink
// protocol. Messages from every connection of the VM wait in one inbox and are
// handed over in order; runs of batchable requests go together (group commit),
// replies go back to the connection each request came on.
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, rmSync } from 'node:fs';
import { NLMSG_HDRLEN, parseMessages, type NlMessage } from '../rules/netlink/nlmsg.js';

/** NETLINK_ROUTE (tc, links) or NETLINK_GENERIC (devlink): in the guest these are separate sockets. */
export type Proto = 'route' | 'genl';

/** A stream that does not frame as netlink within this many bytes is not a guest channel. */
const MAX_MESSAGE = 1 << 20;

export interface ChannelHandler {
  /** Whether a message may share a commit with its neighbours. */
  batchable(msg: NlMessage, proto: Proto): boolean;
  /** One request -> its replies. */
  handle(msg: NlMessage, proto: Proto): Promise<Buffer[]>;
  /** A run of batchable requests -> their replies, in order. */
  handleBatch(msgs: NlMessage[]): Promise<Buffer[][]>;
  /** A connection whose framing was lost (it is closed). */
  framingLost(len: number): void;
}

interface Pending {
  msg: NlMessage;
  proto: Proto;
  reply(parts: Buffer[]): void;
}

export class GuestChannels {
  private readonly servers: Server[] = [];
  private readonly inbox: Pending[] = [];
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
    let buf = Buffer.alloc(0);
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= NLMSG_HDRLEN) {
        const len = buf.readUInt32LE(0);
        if (len < NLMSG_HDRLEN || len > MAX_MESSAGE) {
          // The stream no longer frames: nothing after this point can be trusted. Close this connection only.
          this.handler.framingLost(len);
          sock.destroy();
          return;
        }
        if (buf.length < len) break;
        const msg = parseMessages(buf.subarray(0, len))[0]!;
        buf = buf.subarray(Math.min((len + 3) & ~3, buf.length));
        this.inbox.push({ msg, proto, reply: (parts) => !sock.destroyed && parts.forEach((r) => sock.write(r)) });
      }
      void this.pump();
    });
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
        let n = 0;
        while (n < this.inbox.length && n < this.maxBatch && this.handler.batchable(this.inbox[n]!.msg, this.inbox[n]!.proto)) n++;
        const batch = this.inbox.splice(0, Math.max(n, 1));
        if (batch.length === 1) {
          const p = batch[0]!;
          p.reply(await this.handler.handle(p.msg, p.proto));
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
