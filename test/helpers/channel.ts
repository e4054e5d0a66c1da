// Requests on a VM's channel socket (agent/channel.ts) and everything they got
// back. A probe written after them (seq 0xfffffff0: an empty chain dump on the
// route channel, a devlink get on the generic one) marks the end of their
// answers, so a request answered with nothing at all is seen as such.
import { connect } from 'node:net';
import { encodeDevGetRequest } from '../../rules/netlink/devlink.js';
import { NlmF, NlmsgType, parseMessages, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { encodeChainRequest } from '../../rules/netlink/tc.js';

const PROBE_SEQ = 0xfffffff0;

/** Writes `msgs` in one write to the channel at `path` (`genl`: the devlink one) and resolves with their answers, in order. */
export function exchange(path: string, msgs: Buffer[], genl = false): Promise<NlMessage[]> {
  const probe = genl ? encodeDevGetRequest({ seq: PROBE_SEQ }) : encodeChainRequest('get', '', 'ingress', undefined, { seq: PROBE_SEQ, flags: NlmF.REQUEST | NlmF.DUMP });
  return new Promise((resolve, reject) => {
    const s = connect(path, () => s.write(Buffer.concat([...msgs, probe])));
    let buf = Buffer.alloc(0);
    const got: NlMessage[] = [];
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 16 && buf.readUInt32LE(0) <= buf.length) {
        const len = buf.readUInt32LE(0);
        const m = parseMessages(buf.subarray(0, len))[0]!;
        buf = buf.subarray((len + 3) & ~3);
        if (m.seq !== PROBE_SEQ) got.push(m);
        else if (m.type === NlmsgType.DONE) {
          s.end();
          resolve(got);
        }
      }
    });
  });
}
