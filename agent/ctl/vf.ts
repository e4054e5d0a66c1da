// vpfctl vf VM N ... | vf VM show [-s]: the legacy-eswitch half of `ip link`.
// It sends on the VM's channel exactly what `ip link set PF vf N ...` sends in
// the guest (RTM_NEWLINK on the PF, ip/iplink.c iplink_parse_vf) and prints
// what ip prints: errors as lib/libnetlink.c rtnl_talk_error does, VFs as
// ip/ipaddress.c print_vfinfo does.
import { connect, type Socket } from 'node:net';
import { decodeLinkReply, encodeGetLinkRequest, encodeVfSetRequest, PF_IFINDEX, RTEXT_FILTER, type LinkReply } from '../../rules/netlink/link.js';
import { NLMSG_HDRLEN, NlmsgType, parseError, parseMessages, Rtm, type NlErrorReply, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { formatVfLine, parseVfArgs } from '../../rules/vfsyntax.js';
import type { VfRequest } from '../../rules/vf.js';
import { out, runCommand, takeStateDir, UsageError, vmChannelSocket } from './common.js';

export const usage =
  'vf VM N [mac X] [vlan V [qos Q] [proto 802.1Q|802.1ad]] [rate R] [max_tx_rate M] [min_tx_rate M] [spoofchk on|off] [trust on|off] [state auto|enable|disable] [query_rss on|off] | vf VM show [-s]';

/** ip exits 2 when the kernel refuses a request (ip.c do_cmd returns -(-2) from iplink_modify). */
export const EXIT_NETLINK = 2;

/** glibc strerror() texts for the errnos a channel answers with; ip and devlink print these. */
const STRERROR: Record<number, string> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  7: 'Argument list too long',
  11: 'Resource temporarily unavailable',
  12: 'Cannot allocate memory',
  16: 'Device or resource busy',
  17: 'File exists',
  19: 'No such device',
  22: 'Invalid argument',
  28: 'No space left on device',
  34: 'Numerical result out of range',
  74: 'Bad message',
  90: 'Message too long',
  93: 'Protocol not supported',
  95: 'Operation not supported',
};

export const strerror = (errno: number): string => STRERROR[errno] ?? `Unknown error ${errno}`;

/**
 * lib/libnetlink.c nl_dump_ext_ack: the extack text as "Error: <msg>." (or
 * "Warning: " on an ACK), the dot added only when the text lacks one.
 */
export function extackLine(e: NlErrorReply): string | undefined {
  if (!e.message) return undefined;
  return `${e.errno ? 'Error' : 'Warning'}: ${e.message}${e.message.endsWith('.') ? '' : '.'}`;
}

/** A message already worded as the tool would print it, and the exit code that goes with it. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** The NLMSG_ERROR among the replies, if any. */
export function errorOf(replies: NlMessage[]): NlErrorReply | undefined {
  const m = replies.find((r) => r.type === NlmsgType.ERROR);
  return m ? parseError(m) : undefined;
}

/** rtnl_talk_error: extack text if there is one, else "RTNETLINK answers: <strerror>". */
function rtnlFailure(e: NlErrorReply): ToolError {
  return new ToolError(extackLine(e) ?? `RTNETLINK answers: ${strerror(e.errno)}`, EXIT_NETLINK);
}

/**
 * One netlink conversation on a channel socket, as one netlink socket in the
 * guest: requests go out in order, replies are matched by nlmsg_seq, and
 * replies to an earlier request (a trailing ACK after the answer) are dropped.
 */
export class Conversation {
  private buf = Buffer.alloc(0);
  private pending?: { seq: number; got: NlMessage[]; isAnswer: (m: NlMessage) => boolean; resolve: (m: NlMessage[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };
  private failure?: Error;

  private constructor(
    private readonly sock: Socket,
    private readonly timeoutMs: number,
  ) {
    sock.on('data', (c: Buffer) => this.receive(c));
    sock.on('close', () => this.fail(new Error('vpfd closed the VM channel before answering')));
    sock.on('error', (e) => this.fail(e));
  }

  /** Connects to a channel socket; a missing socket is worded for the operator. */
  static open(path: string, timeoutMs = 30_000): Promise<Conversation> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const onError = (e: NodeJS.ErrnoException) =>
        reject(new Error(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? `no channel for that VM (${path}): is vpfd running and the VM added?` : e.message));
      sock.once('error', onError);
      sock.once('connect', () => {
        sock.off('error', onError);
        resolve(new Conversation(sock, timeoutMs));
      });
    });
  }

  /**
   * Sends one request and collects the replies with its seq until NLMSG_ERROR
   * (ACK or error), NLMSG_DONE, or the first reply `isAnswer` accepts: a
   * non-dump GET is answered by one message and, without NLM_F_ACK, nothing after it.
   */
  ask(request: Buffer, isAnswer: (m: NlMessage) => boolean = () => false): Promise<NlMessage[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('one request at a time'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no answer from vpfd on the VM channel within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
      this.pending = { seq: request.readUInt32LE(8), got: [], isAnswer, resolve, reject, timer };
      this.sock.write(request);
    });
  }

  close(): void {
    this.failure ??= new Error('conversation closed');
    this.sock.destroy();
  }

  private receive(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= NLMSG_HDRLEN) {
      const len = this.buf.readUInt32LE(0);
      if (len < NLMSG_HDRLEN) return this.fail(new Error(`vpfd sent a netlink message of length ${len}`));
      if (len > this.buf.length) return;
      const m = parseMessages(this.buf.subarray(0, len))[0]!;
      this.buf = this.buf.subarray(Math.min((len + 3) & ~3, this.buf.length));
      const p = this.pending;
      if (!p || m.seq !== p.seq) continue;
      p.got.push(m);
      if (m.type === NlmsgType.ERROR || m.type === NlmsgType.DONE || p.isAnswer(m)) {
        clearTimeout(p.timer);
        this.pending = undefined;
        p.resolve(p.got);
      }
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const p = this.pending;
    if (!p) return;
    clearTimeout(p.timer);
    this.pending = undefined;
    p.reject(e);
  }
}

/** iproute2 numbers its requests from the time (lib/libnetlink.c rtnl_open: rth->seq = time(NULL)). */
const firstSeq = () => Math.floor(Date.now() / 1000) >>> 0;

/** The PF as a GETLINK on ifindex 1 reports it (one RTM_NEWLINK, no NLMSG_DONE for a non-dump GET). */
async function getPf(conv: Conversation, seq: number, extMask: number): Promise<LinkReply> {
  const replies = await conv.ask(encodeGetLinkRequest({ seq }, PF_IFINDEX, extMask), (m) => m.type === Rtm.NEWLINK);
  const e = errorOf(replies);
  if (e && e.errno !== 0) throw rtnlFailure(e);
  const msg = replies.find((m) => m.type === Rtm.NEWLINK);
  if (!msg) throw new Error('vpfd answered the PF query without a link');
  const link = decodeLinkReply(msg);
  if (!link.ok) throw new Error(`cannot read vpfd's link reply: ${link.error.message}`);
  return link.value;
}

async function show(conv: Conversation, args: string[]): Promise<number> {
  const stats = args.includes('-s');
  const extra = args.filter((a) => a !== '-s');
  if (extra.length) throw new UsageError(`show takes only -s, not "${extra[0]}"`);
  // ip link show asks RTEXT_FILTER_VF, and SKIP_STATS unless -s (ip/ipaddress.c iplink_filter_req).
  const pf = await getPf(conv, firstSeq(), RTEXT_FILTER.VF | (stats ? 0 : RTEXT_FILTER.SKIP_STATS));
  // print_linkinfo prints VFs only when both IFLA_NUM_VF and IFLA_VFINFO_LIST came back.
  if (pf.numVf === undefined) return 0;
  for (const vf of pf.vfs) out(`    ${formatVfLine(vf.vf, vf, stats ? vf.stats : undefined)}`);
  if (pf.vfs.length !== pf.numVf) process.stderr.write(`Truncated VF list: ${pf.name ?? 'pf'}\n`);
  return 0;
}

/**
 * ipaddr_get_vf_rate: when a command names only one of min_tx_rate/max_tx_rate,
 * ip reads the VF's current IFLA_VF_RATE so IFLA_VF_RATE keeps the other one.
 */
async function currentRate(conv: Conversation, seq: number, vf: number): Promise<{ min: number; max: number }> {
  const pf = await getPf(conv, seq, RTEXT_FILTER.VF | RTEXT_FILTER.SKIP_STATS);
  const found = pf.vfs.find((v) => v.vf === vf);
  if (!found) throw new ToolError(`Cannot find VF ${vf}`, 1);
  return { min: found.minTxRate, max: found.maxTxRate };
}

function parseOrFail(args: string[], rate?: { min: number; max: number }): VfRequest {
  const p = parseVfArgs(['vf', ...args], { currentRate: () => rate });
  if (!p.ok) throw new ToolError(`Error: ${p.error.message}`, EXIT_NETLINK);
  return p.value;
}

/**
 * Whether the command leaves one of min_tx_rate/max_tx_rate to the VF's current
 * value: parseVfArgs fills a missing one from `currentRate`, so two parses with
 * different stand-ins differ exactly in the missing field. The stand-ins (0/0 and
 * 1/0xffffffff) cannot fail its min <= max check, so only real syntax errors surface.
 */
function leavesRateOut(args: string[], parsed: VfRequest): boolean {
  if (!parsed.rate) return false;
  const other = parseOrFail(args, { min: 1, max: 0xffffffff }).rate!;
  return other.min !== parsed.rate.min || other.max !== parsed.rate.max;
}

/** `vf VM N ...`: parsed before the channel is opened, so a typo never reaches vpfd. */
async function set(path: string, args: string[]): Promise<number> {
  let req = parseOrFail(args, { min: 0, max: 0 });
  const readRate = leavesRateOut(args, req);
  return converse(path, async (conv) => {
    let seq = firstSeq();
    if (readRate) req = parseOrFail(args, await currentRate(conv, seq++, req.vf));
    const replies = await conv.ask(encodeVfSetRequest({ seq }, PF_IFINDEX, [req]));
    const e = errorOf(replies);
    if (!e) throw new Error('vpfd ended the answer without an ACK');
    if (e.errno !== 0) throw rtnlFailure(e);
    // An ACK may carry a warning (nl_dump_ext_ack prints it, the command still succeeds).
    const warning = extackLine(e);
    if (warning) process.stderr.write(`${warning}\n`);
    return 0;
  });
}

/** Runs `body` on a fresh conversation, closed afterwards whatever happens. */
export async function converse(path: string, body: (conv: Conversation) => Promise<number>): Promise<number> {
  const conv = await Conversation.open(path);
  try {
    return await body(conv);
  } finally {
    conv.close();
  }
}

/** Runs a command body; a ToolError is printed as the tool would print it and gives its exit code. */
export async function asTool(body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (!(e instanceof ToolError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return e.exitCode;
  }
}

export function run(argv: string[]): Promise<number> {
  return runCommand('vf', async () => {
    const args = [...argv];
    const stateDir = takeStateDir(args);
    const vm = args.shift();
    if (!vm || !args.length) throw new UsageError(`usage: vpfctl ${usage}`);
    const path = vmChannelSocket(stateDir, vm);
    // `show -s` or, as ip takes it, `-s show`.
    const showAt = args[0] === '-s' ? 1 : 0;
    if (args[showAt] === 'show' || args[showAt] === 'list') {
      return asTool(() => converse(path, (conv) => show(conv, [...args.slice(0, showAt), ...args.slice(showAt + 1)])));
    }
    return asTool(() => set(path, args));
  });
}
