// The raw client of a VM's guest channel, for vpfctl, the tests and the bench:
// netlink requests written on the unix socket, replies read back with the one
// stream framer (agent/nlstream.ts).
import { connect } from 'node:net';
import { NlmsgType, parseMessages, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { NlFramer } from '../nlstream.js';

/** Sends one request and collects replies until its ACK/error or NLMSG_DONE. */
export function talk(path: string, request: Buffer): Promise<NlMessage[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const framer = new NlFramer();
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
      for (const b of framer.push(c)) {
        const m = parseMessages(b)[0]!;
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

/** Writes every request on one connection (pipelined) and resolves with each request's last reply, in order. */
export function pipeline(path: string, requests: Buffer[]): Promise<NlMessage[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const framer = new NlFramer();
    const got: NlMessage[] = [];
    sock.on('error', reject);
    sock.on('connect', () => sock.write(Buffer.concat(requests)));
    sock.on('data', (c: Buffer) => {
      for (const b of framer.push(c)) {
        const m = parseMessages(b)[0]!;
        if (m.type !== NlmsgType.ERROR && m.type !== NlmsgType.DONE) continue;
        got.push(m);
        if (got.length === requests.length) {
          sock.end();
          resolve(got);
          return;
        }
      }
    });
  });
}
