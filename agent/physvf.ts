// The physical-VF backend: when a guest's virtual VF is backed by a VF of a host
// NIC in legacy mode (vDPA over a VF), the guest's VF settings go to that host VF
// as the administrator's `ip link set PF vf H ...` would send them (RTM_NEWLINK,
// REQUEST|ACK, ifi_index = the PF; ip/iplink.c iplink_modify), and the kernel's
// answer goes back to the guest unchanged (the "physical VF via rtnetlink" column
// of the legacy-path behaviour table).
//
// Transport: the `netlink` package's RawNetlinkSocket, which sends our bytes as
// they are and hands back raw datagrams. Its binding cannot set NETLINK_EXT_ACK,
// so the kernel's answers carry no extack text; that loses nothing for VF
// settings (ndo_set_vf_* take no extack, so the kernel never has text for them).
import netlink from 'netlink';
import { constants as osConstants } from 'node:os';
import { Errno } from '../rules/errors.js';
import { decodeLinkReply, encodeVfSetRequest, IFLA, RTEXT_FILTER, type LinkReply } from '../rules/netlink/link.js';
import { AttrWriter, buildMessage, NlmF, NlmsgType, parseError, parseMessages, Rtm, type NlMessage } from '../rules/netlink/nlmsg.js';
import type { VfRequest, VfSettings } from '../rules/vf.js';

const { RawNetlinkSocket, Protocol } = netlink;
type RawSocket = InstanceType<typeof RawNetlinkSocket>;

const E = osConstants.errno;
/** A reply must come within this long (the brief's 5 s; rtnl_talk itself waits forever). */
const REPLY_TIMEOUT_MS = 5000;
/** do_setvfinfo reads the VF index as u32; anything the kernel could be sent is passed on for it to judge. */
const U32_MAX = 0xffffffff;
const IFINFOMSG_LEN = 16;

export interface KernelAnswer {
  /** 0 = ok, positive errno otherwise. */
  errno: number;
  /** extack NLMSGERR_ATTR_MSG if the kernel sent one. */
  message?: string;
}

export type HostVfSettings = VfSettings & { vf: number };
export type ReadResult = { ok: true; vfs: HostVfSettings[] } | { ok: false; answer: KernelAnswer };

export interface HostPfBackendOpts {
  /** The host PF's interface name, looked up by name for every request, as `ip` does. */
  pf: string;
  /** Guest VF index -> host VF index. */
  hostVf: (guestVf: number) => number;
}

/**
 * The exact bytes sent for `req` (its vf replaced by `hostVf`): what
 * `ip link set dev PF vf hostVf ...` sends, nlmsg_pid 0 as iproute2 leaves it.
 */
export function hostVfRequest(ifindex: number, req: VfRequest, hostVf: number, seq: number): Buffer {
  // Spreading keeps the request's key order, which encodeVfSetRequest follows (command-line order).
  return encodeVfSetRequest({ type: Rtm.NEWLINK, flags: NlmF.REQUEST | NlmF.ACK, seq, pid: 0 }, ifindex, [{ ...req, vf: hostVf }]);
}

/** RTM_GETLINK by name (rtnl_getlink looks up IFLA_IFNAME when ifi_index is 0), with IFLA_EXT_MASK. */
function getLinkByName(name: string, extMask: number, seq: number): Buffer {
  const attrs = new AttrWriter().string(IFLA.IFNAME, name).u32(IFLA.EXT_MASK, extMask).toBuffer();
  return buildMessage({ type: Rtm.GETLINK, flags: NlmF.REQUEST, seq, pid: 0 }, Buffer.concat([Buffer.alloc(IFINFOMSG_LEN), attrs]));
}

const errnoOf = (e: unknown): number => {
  const n = (e as { errno?: unknown })?.errno;
  return typeof n === 'number' && n !== 0 ? Math.abs(n) : E.EIO;
};

const closedAnswer = (): KernelAnswer => ({ errno: E.EBADF, message: 'the host PF backend is closed' });

type Exchange = { ok: true; messages: NlMessage[] } | { ok: false; answer: KernelAnswer };

interface Pending {
  seq: number;
  messages: NlMessage[];
  done: (r: Exchange) => void;
}

export class HostPfBackend {
  private readonly pf: string;
  private readonly hostVf: (guestVf: number) => number;
  private socket: RawSocket | undefined;
  private closed = false;
  private pending: Pending | undefined;
  /** Requests run one at a time: each waits for the previous one's answer. */
  private queue: Promise<unknown> = Promise.resolve();
  /** iproute2 seeds its sequence with time(NULL); any start works, replies are matched on it. */
  private seq = Math.floor(Date.now() / 1000) >>> 0;

  constructor(opts: HostPfBackendOpts) {
    this.pf = opts.pf;
    this.hostVf = opts.hostVf;
  }

  /** Sends one request (guest VF index mapped to the host's) and returns the kernel's answer. */
  apply(req: VfRequest): Promise<KernelAnswer> {
    return this.serialized(async () => {
      if (this.closed) return closedAnswer();
      let host: number;
      try {
        host = this.hostVf(req.vf);
      } catch (e) {
        return { errno: Errno.EINVAL, message: `guest vf ${req.vf} has no host VF: ${(e as Error)?.message ?? String(e)}` };
      }
      if (!Number.isInteger(host) || host < 0 || host > U32_MAX) {
        return { errno: Errno.EINVAL, message: `guest vf ${req.vf} maps to host vf ${host}, not a VF index` };
      }
      const link = await this.lookup(RTEXT_FILTER.SKIP_STATS);
      if (!link.ok) return link.answer;
      const seq = this.nextSeq();
      const r = await this.exchange(hostVfRequest(link.reply.ifindex, req, host, seq), seq);
      if (!r.ok) return r.answer;
      const last = r.messages[r.messages.length - 1]!;
      if (last.type !== NlmsgType.ERROR) return { errno: E.EBADMSG, message: `the kernel answered RTM_NEWLINK with message type ${last.type}, not an ACK` };
      return errorAnswer(last);
    });
  }

  /** Reads the host PF's VFs (RTM_GETLINK with RTEXT_FILTER_VF) -> settings per host VF, or the kernel's error. */
  read(): Promise<ReadResult> {
    return this.serialized(async (): Promise<ReadResult> => {
      // SKIP_STATS: VfSettings has no counters, and mlx5 queries firmware per VF for them.
      const link = await this.lookup(RTEXT_FILTER.VF | RTEXT_FILTER.SKIP_STATS);
      if (!link.ok) return link;
      return { ok: true, vfs: link.reply.vfs.map(({ stats: _stats, ...settings }) => settings) };
    });
  }

  close(): void {
    this.closed = true;
    this.finish({ ok: false, answer: { errno: E.ECANCELED, message: 'the host PF backend was closed before the kernel answered' } });
    this.socket?.close();
    this.socket = undefined;
  }

  private serialized<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /** The PF by name: its ifindex (and VFs when extMask asks for them), or the kernel's refusal (ENODEV for no such name). */
  private async lookup(extMask: number): Promise<{ ok: true; reply: LinkReply } | { ok: false; answer: KernelAnswer }> {
    const seq = this.nextSeq();
    const r = await this.exchange(getLinkByName(this.pf, extMask, seq), seq);
    if (!r.ok) return r;
    const last = r.messages[r.messages.length - 1]!;
    if (last.type === NlmsgType.ERROR) {
      const answer = errorAnswer(last);
      // An ACK without the link would be a kernel bug; say so rather than use ifindex 0.
      return { ok: false, answer: answer.errno ? answer : { errno: E.EBADMSG, message: `RTM_GETLINK for ${this.pf} was acknowledged without a link` } };
    }
    const reply = decodeLinkReply(last);
    if (!reply.ok) return { ok: false, answer: { errno: E.EBADMSG, message: `the kernel's RTM_NEWLINK for ${this.pf}: ${reply.error.message}` } };
    return { ok: true, reply: reply.value };
  }

  /** Sends one message and collects the replies carrying its seq until NLMSG_ERROR, NLMSG_DONE or a single (non-multi) reply. */
  private exchange(bytes: Buffer, seq: number): Promise<Exchange> {
    if (this.closed) return Promise.resolve({ ok: false, answer: closedAnswer() });
    return this.open().then(
      (socket) => this.sendAndWait(socket, bytes, seq),
      (e): Exchange => ({ ok: false, answer: { errno: errnoOf(e), message: `cannot open a NETLINK_ROUTE socket: ${(e as Error)?.message ?? String(e)}` } }),
    );
  }

  private sendAndWait(socket: RawSocket, bytes: Buffer, seq: number): Promise<Exchange> {
    if (this.closed) return Promise.resolve({ ok: false, answer: closedAnswer() });
    return new Promise<Exchange>((resolve) => {
      const timer = setTimeout(
        () => this.finish({ ok: false, answer: { errno: E.ETIMEDOUT, message: `no answer from the kernel within ${REPLY_TIMEOUT_MS / 1000} s` } }),
        REPLY_TIMEOUT_MS,
      );
      this.pending = {
        seq,
        messages: [],
        done: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      socket.send(bytes, { port: 0 }, (err) => {
        if (err) this.finish({ ok: false, answer: { errno: errnoOf(err), message: `sending to the kernel failed: ${err.message}` } });
      });
    });
  }

  private async open(): Promise<RawSocket> {
    if (this.socket) return this.socket;
    const s = new RawNetlinkSocket(Protocol.ROUTE);
    // The pending request's timer keeps the process alive while one is in flight; an idle backend must not.
    s.unref();
    s.on('message', (buf) => this.receive(buf));
    s.on('truncatedMessage', () => this.finish({ ok: false, answer: { errno: E.EMSGSIZE, message: 'the kernel reply was truncated' } }));
    s.on('error', (err) => this.finish({ ok: false, answer: { errno: errnoOf(err), message: `netlink socket error: ${err.message}` } }));
    this.socket = s;
    return s;
  }

  private receive(buf: Buffer): void {
    const p = this.pending;
    if (!p) return;
    let messages: NlMessage[];
    try {
      messages = parseMessages(buf);
    } catch (e) {
      this.finish({ ok: false, answer: { errno: E.EBADMSG, message: `unreadable kernel reply: ${(e as Error).message}` } });
      return;
    }
    for (const m of messages) {
      // Replies to an earlier request that timed out carry an older seq: drop them.
      if (m.seq !== p.seq) continue;
      p.messages.push(m);
      if (m.type === NlmsgType.ERROR || m.type === NlmsgType.DONE || !(m.flags & NlmF.MULTI)) {
        this.finish({ ok: true, messages: p.messages });
        return;
      }
    }
  }

  private finish(r: Exchange): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    p.done(r);
  }
}

/** NLMSG_ERROR -> the answer as the kernel gave it (errno 0 is the ACK). */
function errorAnswer(m: NlMessage): KernelAnswer {
  try {
    const e = parseError(m);
    return e.message !== undefined ? { errno: e.errno, message: e.message } : { errno: e.errno };
  } catch (err) {
    return { errno: E.EBADMSG, message: `unreadable NLMSG_ERROR: ${(err as Error).message}` };
  }
}
