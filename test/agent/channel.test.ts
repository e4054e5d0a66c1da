// The guest channel transport (agent/channel.ts) with a stand-in handler:
// framing over a byte stream, pipelined requests committed together, replies
// addressed and acknowledged as af_netlink.c netlink_rcv_skb does, and a stream
// that stops framing after a valid request.
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { answer, GuestChannels, type ChannelHandler } from '../../agent/channel.js';
import { buildDone, buildError, buildMessage, NlmF, NlmsgType, parseError, parseMessages, Rtm, type NlMessage } from '../../rules/netlink/nlmsg.js';

const dirs: string[] = [];
const open: GuestChannels[] = [];
afterEach(() => {
  open.splice(0).forEach((c) => c.close());
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

/** A handler that records what it was given: filter changes batch, everything else runs alone. */
function recorder() {
  const calls: { batch: boolean; seqs: number[] }[] = [];
  let lost: number[] = [];
  const handler: ChannelHandler = {
    batchable: (m) => m.type === Rtm.NEWTFILTER,
    handle: async (m) => {
      calls.push({ batch: false, seqs: [m.seq] });
      // A get answers a reply message; a change an ACK (answer() keeps it only with NLM_F_ACK).
      return m.type === Rtm.GETLINK ? [buildMessage({ type: Rtm.NEWLINK, flags: 0, seq: m.seq, pid: 0 }, Buffer.alloc(16))] : [buildError(m, 0)];
    },
    handleBatch: async (ms) => {
      calls.push({ batch: true, seqs: ms.map((m) => m.seq) });
      await new Promise((r) => setTimeout(r, 5));
      return ms.map((m) => [buildError(m, 0)]);
    },
    framingLost: (len) => {
      lost.push(len);
    },
  };
  return { handler, calls, lost: () => lost, reset: () => (lost = []) };
}

async function serve(handler: ChannelHandler): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vpf-chan-'));
  dirs.push(dir);
  const ch = new GuestChannels(handler);
  open.push(ch);
  const path = join(dir, 'c.sock');
  await ch.listen(path, 'route');
  return path;
}

const req = (type: number, seq: number, flags = NlmF.REQUEST | NlmF.ACK, pid = 77) => buildMessage({ type, flags, seq, pid }, Buffer.alloc(20));

/** A client that collects every reply until `n` arrived or the server closed. */
function client(path: string): { sock: Socket; replies: NlMessage[]; until(n: number): Promise<{ replies: NlMessage[]; closed: boolean }> } {
  const sock = connect(path);
  const replies: NlMessage[] = [];
  let buf = Buffer.alloc(0);
  let closed = false;
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  sock.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 16 && buf.readUInt32LE(0) <= buf.length) {
      const len = buf.readUInt32LE(0);
      replies.push(parseMessages(buf.subarray(0, len))[0]!);
      buf = buf.subarray((len + 3) & ~3);
    }
    wake();
  });
  sock.on('end', () => {
    closed = true;
    wake();
  });
  return {
    sock,
    replies,
    until: (n) =>
      new Promise((resolve) => {
        const check = () => (replies.length >= n || closed ? resolve({ replies: replies.slice(), closed }) : waiters.push(check));
        check();
      }),
  };
}

describe('answer(): what goes back for one request (netlink_rcv_skb, netlink_ack)', () => {
  const msg = (flags: number): NlMessage => ({ type: Rtm.GETTFILTER, flags, seq: 5, pid: 0xdeadbeef, payload: Buffer.alloc(20) });
  const reply = buildMessage({ type: Rtm.NEWTFILTER, flags: 0, seq: 5, pid: 0 }, Buffer.alloc(20));
  const types = (b: Buffer[]) => b.map((x) => x.readUInt16LE(4));

  it('a reply is followed by an ACK only when NLM_F_ACK was asked for', () => {
    expect(types(answer(msg(NlmF.REQUEST | NlmF.ACK), [reply]))).toEqual([Rtm.NEWTFILTER, NlmsgType.ERROR]);
    expect(types(answer(msg(NlmF.REQUEST), [reply]))).toEqual([Rtm.NEWTFILTER]);
  });

  it('errors and dumps get no extra ACK; a success without NLM_F_ACK gets nothing', () => {
    const m = msg(NlmF.REQUEST | NlmF.ACK);
    expect(types(answer(m, [buildError(m, 22, 'bad')]))).toEqual([NlmsgType.ERROR]);
    expect(types(answer(m, [reply, buildDone(5)]))).toEqual([Rtm.NEWTFILTER, NlmsgType.DONE]);
    expect(answer(msg(NlmF.REQUEST), [buildError(m, 0)])).toEqual([]);
    // An error goes back whether or not an ACK was asked for.
    expect(types(answer(msg(NlmF.REQUEST), [buildError(m, 22)]))).toEqual([NlmsgType.ERROR]);
  });

  it('every message is addressed to the requester port id, including each of several in one buffer', () => {
    const m = msg(NlmF.REQUEST | NlmF.ACK);
    const out = answer(m, [Buffer.concat([reply, reply]), buildDone(5)]);
    const all = out.flatMap((b) => parseMessages(b));
    expect(all).toHaveLength(3);
    expect(all.every((x) => x.pid === 0xdeadbeef)).toBe(true);
  });
});

describe('GuestChannels', () => {
  it('frames messages split across writes and several in one write, answering each in order', async () => {
    const r = recorder();
    const c = client(await serve(r.handler));
    const a = req(Rtm.GETLINK, 1);
    const b = Buffer.concat([req(Rtm.GETLINK, 2), req(Rtm.GETLINK, 3)]);
    c.sock.write(a.subarray(0, 7));
    await new Promise((res) => setTimeout(res, 10));
    c.sock.write(Buffer.concat([a.subarray(7), b.subarray(0, 30)]));
    await new Promise((res) => setTimeout(res, 10));
    c.sock.write(b.subarray(30));
    const { replies } = await c.until(6);
    // Each get: its reply, then the ACK (C2); every reply to port 77 (C1).
    expect(replies.map((m) => [m.seq, m.type])).toEqual([
      [1, Rtm.NEWLINK],
      [1, NlmsgType.ERROR],
      [2, Rtm.NEWLINK],
      [2, NlmsgType.ERROR],
      [3, Rtm.NEWLINK],
      [3, NlmsgType.ERROR],
    ]);
    expect(replies.every((m) => m.pid === 77)).toBe(true);
    c.sock.end();
  });

  it('pipelined filter changes are committed as one batch; a request of another kind splits the run', async () => {
    const r = recorder();
    const c = client(await serve(r.handler));
    const msgs = [1, 2, 3].map((s) => req(Rtm.NEWTFILTER, s));
    c.sock.write(Buffer.concat([...msgs, req(Rtm.GETLINK, 4), req(Rtm.NEWTFILTER, 5), req(Rtm.NEWTFILTER, 6)]));
    const { replies } = await c.until(7);
    expect(r.calls).toEqual([
      { batch: true, seqs: [1, 2, 3] },
      { batch: false, seqs: [4] },
      { batch: true, seqs: [5, 6] },
    ]);
    expect(replies.map((m) => m.seq)).toEqual([1, 2, 3, 4, 4, 5, 6]);
    c.sock.end();
  });

  it('replies go to the connection each request came on, though all share one inbox', async () => {
    const r = recorder();
    const path = await serve(r.handler);
    const [x, y] = [client(path), client(path)];
    await Promise.all([new Promise((res) => x.sock.once('connect', res)), new Promise((res) => y.sock.once('connect', res))]);
    x.sock.write(Buffer.concat([req(Rtm.NEWTFILTER, 10), req(Rtm.NEWTFILTER, 11)]));
    y.sock.write(Buffer.concat([req(Rtm.NEWTFILTER, 20), req(Rtm.NEWTFILTER, 21)]));
    expect((await x.until(2)).replies.map((m) => m.seq)).toEqual([10, 11]);
    expect((await y.until(2)).replies.map((m) => m.seq)).toEqual([20, 21]);
    x.sock.end();
    y.sock.end();
  });

  it('a valid request followed by broken framing in the same write is answered, then the connection is closed', async () => {
    const r = recorder();
    const c = client(await serve(r.handler));
    const broken = Buffer.alloc(16);
    broken.writeUInt32LE(4, 0); // nlmsg_len below the header: the stream no longer frames
    c.sock.write(Buffer.concat([req(Rtm.NEWTFILTER, 1), req(Rtm.GETLINK, 2), broken, req(Rtm.NEWTFILTER, 3)]));
    const { replies, closed } = await c.until(99);
    expect(closed).toBe(true);
    expect(replies.map((m) => [m.seq, m.type])).toEqual([
      [1, NlmsgType.ERROR],
      [2, Rtm.NEWLINK],
      [2, NlmsgType.ERROR],
    ]);
    expect(parseError(replies[0]!).errno).toBe(0);
    expect(r.lost()).toEqual([4]);
    // Nothing after the break reached the handler.
    expect(r.calls.flatMap((k) => k.seqs)).toEqual([1, 2]);
  });

  it('a message without NLM_F_REQUEST is not handed over: it is ACKed when asked, as netlink_rcv_skb does', async () => {
    const r = recorder();
    const c = client(await serve(r.handler));
    c.sock.write(Buffer.concat([req(Rtm.GETLINK, 1, NlmF.ACK), req(Rtm.GETLINK, 2, 0), req(Rtm.GETLINK, 3, NlmF.REQUEST)]));
    const { replies } = await c.until(2);
    expect(replies.map((m) => [m.seq, m.type])).toEqual([
      [1, NlmsgType.ERROR],
      [3, Rtm.NEWLINK],
    ]);
    expect(r.calls.flatMap((k) => k.seqs)).toEqual([3]);
    c.sock.end();
  });
});
