// vpfctl tc VM TC-ARGS...: the guest's own tc (iproute2) run against the VM's
// route channel, so that what it sends and prints is exactly what the guest's
// tc sends and prints (`vpfctl guest VM -- tc ...`). `talk` is the raw channel
// client the daemon tests and the bench use to send bytes of their own.
import { connect } from 'node:net';
import { NlmsgType, parseMessages, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { runCommand, takeStateDir, UsageError } from './common.js';
import { runGuestTool } from './guest.js';

export const usage = 'tc VM [-s] [-j] filter|chain|qdisc ...            # the real tc, e.g. tc VM -s filter show dev vf0 ingress';

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

export function run(argv: string[]): Promise<number> {
  return runCommand('tc', async () => {
    const args = [...argv];
    const stateDir = takeStateDir(args);
    const vm = args.shift();
    if (!vm || !args.length) throw new UsageError(`usage: vpfctl ${usage}`);
    return runGuestTool(stateDir, vm, 'tc', args);
  });
}
