// vpfctl tc VM [-s] qdisc|filter|chain ...: a tc-like front end. It encodes the
// request with rules/ and sends it on the VM's channel exactly as QEMU forwards
// a guest's tc, then prints what tc would print: errors as "Error: <extack>.",
// filters as `tc -s filter show` shows them.
import { connect } from 'node:net';
import { NlmF, NlmsgType, parseError, parseMessages, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { decodeFilterDump, encodeChainRequest, encodeFilterRequest, encodeFilterSelect, encodeQdiscRequest, type FilterSelector } from '../../rules/netlink/tc.js';
import { formatFilterShow, parseFilter } from '../../rules/tcsyntax/index.js';
import { out, runCommand, takeStateDir, UsageError, vmChannelSocket } from './common.js';

export const usage = 'tc VM [-s] filter add|replace|del|show ARGS | tc VM qdisc add|del dev DEV clsact | tc VM chain add|del dev DEV ingress chain N';

class TcError extends UsageError {}

/** Sends one request and collects replies until its ACK/error or NLMSG_DONE. */
export function talk(path: string, request: Buffer): Promise<NlMessage[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = Buffer.alloc(0);
    const got: NlMessage[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no answer from vpfd on the VM channel within 30 s'));
    }, 30_000);
    sock.on('connect', () => sock.write(request));
    sock.on('close', () => {
      clearTimeout(timer);
      // Resolved already when the answer arrived; otherwise the daemon went away mid-request.
      reject(new Error('vpfd closed the VM channel before answering'));
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? `no channel for that VM (${path}): is vpfd running and the VM added?` : e.message));
    });
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 16 && buf.readUInt32LE(0) <= buf.length) {
        const len = buf.readUInt32LE(0);
        const m = parseMessages(buf.subarray(0, len))[0]!;
        buf = buf.subarray(Math.min((len + 3) & ~3, buf.length));
        got.push(m);
        if (m.type === NlmsgType.ERROR || m.type === NlmsgType.DONE) {
          clearTimeout(timer);
          sock.end();
          resolve(got);
          return;
        }
      }
    });
  });
}

function failed(replies: NlMessage[]): void {
  const last = replies[replies.length - 1];
  if (last?.type !== NlmsgType.ERROR) return;
  const e = parseError(last);
  if (e.errno === 0) return;
  // What tc prints for an error with extack (tc/tc_filter.c via lib/libnetlink.c).
  throw new TcError(`${e.message ? `Error: ${e.message}.\n` : `RTNETLINK answers: errno ${e.errno}\n`}We have an error talking to the kernel`);
}

function selector(args: string[]): FilterSelector {
  const p = parseFilter(args, { selectorOnly: true });
  if (!p.ok) throw new TcError(`Error: ${p.error.message}`);
  const r = p.value;
  const given = (w: string) => args.includes(w);
  return {
    dev: r.dev,
    direction: r.direction,
    chain: given('chain') ? r.chain : undefined,
    prio: r.prio,
    // iproute2 sends protocol 0 (any) unless one is named.
    protocol: given('protocol') || given('proto') ? r.protocol : 0,
    handle: r.handle,
    kind: given('flower') ? 'flower' : undefined,
  };
}

export function run(argv: string[]): Promise<number> {
  return runCommand('tc', async () => {
    const args = [...argv];
    const stateDir = takeStateDir(args);
    const vm = args.shift();
    if (!vm) throw new UsageError(`usage: vpfctl ${usage}`);
    const path = vmChannelSocket(stateDir, vm);
    const stats = args[0] === '-s';
    if (stats) args.shift();
    const [object, cmd, ...rest] = args;
    const seq = Math.floor(Date.now() / 1000) >>> 0;
    try {
      if (object === 'qdisc' && (cmd === 'add' || cmd === 'del')) {
        const dev = rest[rest.indexOf('dev') + 1];
        const kind = rest.includes('clsact') ? 'clsact' : rest.includes('ingress') ? 'ingress' : undefined;
        if (!dev || rest.indexOf('dev') < 0 || !kind) throw new UsageError('qdisc add|del dev DEV clsact');
        failed(await talk(path, encodeQdiscRequest(cmd === 'add' ? 'new' : 'del', dev, kind, { seq })));
        return 0;
      }
      if (object === 'chain' && (cmd === 'add' || cmd === 'del')) {
        const s = selector(rest);
        failed(await talk(path, encodeChainRequest(cmd === 'add' ? 'new' : 'del', s.dev, s.direction, s.chain, { seq })));
        return 0;
      }
      if (object === 'filter' && (cmd === 'add' || cmd === 'replace' || cmd === 'change')) {
        const p = parseFilter(rest);
        if (!p.ok) throw new TcError(`Error: ${p.error.message}`);
        const flags = NlmF.REQUEST | NlmF.ACK | NlmF.CREATE | (cmd === 'add' ? NlmF.EXCL : NlmF.REPLACE);
        failed(await talk(path, encodeFilterRequest(p.value, { seq, flags })));
        return 0;
      }
      if (object === 'filter' && cmd === 'del') {
        failed(await talk(path, encodeFilterSelect('del', selector(rest), { seq })));
        return 0;
      }
      if (object === 'filter' && (cmd === 'show' || cmd === 'list' || cmd === 'get')) {
        const replies = await talk(path, encodeFilterSelect('get', selector(rest), { seq, flags: NlmF.REQUEST | NlmF.DUMP }));
        failed(replies);
        for (const m of replies.filter((x) => x.type !== NlmsgType.DONE && x.type !== NlmsgType.ERROR)) {
          const d = decodeFilterDump(m);
          if (!d.ok) throw new Error(`cannot read vpfd's dump: ${d.error.message}`);
          out(formatFilterShow(d.value.rule, d.value.stats, stats));
        }
        return 0;
      }
    } catch (e) {
      if (e instanceof TcError) {
        process.stderr.write(`${e.message}\n`);
        return 2;
      }
      throw e;
    }
    throw new UsageError(`usage: vpfctl ${usage}`);
  });
}

