// The batch path (group commit): pipelined filter requests of one VM are
// applied in order, translated together, journaled and installed in one
// bundle, then each is answered. What a guest and an operator would notice:
// an ack before the bundle committed, a batch spread over several bundles,
// a bridge that differs from what a restart computes, or a journal that
// reloads other rules than the ones acknowledged.
import { connect } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { FlowSync } from '../../agent/flowsync.js';
import { Journal } from '../../agent/journal.js';
import { Metrics } from '../../agent/metrics.js';
import type { VmRecord } from '../../agent/records.js';
import { VfState } from '../../agent/vfstate.js';
import { VmState } from '../../agent/vm.js';
import { NlFramer } from '../../agent/nlstream.js';
import { Errno } from '../../rules/errors.js';
import type { FlowerRule } from '../../rules/model.js';
import { parseError, parseMessages, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { encodeFilterRequest, encodeFilterSelect } from '../../rules/netlink/tc.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { vmRecord } from '../helpers/records.js';
import { standInBridge, type StandInBridge } from '../helpers/standin.js';
import { tempDirs } from '../helpers/tmpdirs.js';

const silent = pino({ level: 'silent' });
const rule = (args: string) => (parseFilter(splitArgs(args)) as { value: FlowerRule }).value;
/** A udp drop rule in group (vf0, ingress, chain 0, prio), with an explicit handle. */
const udp = (prio: number, handle: number, port = handle) => rule(`dev vf0 ingress prio ${prio} handle ${handle} protocol ip flower ip_proto udp dst_port ${port} action drop`);
const add = (r: FlowerRule, seq: number) => encodeFilterRequest(r, { seq });
const del = (prio: number, handle: number, seq: number) => encodeFilterSelect('del', { dev: 'vf0', direction: 'ingress', chain: undefined, prio, protocol: 0x0800, handle, kind: 'flower' }, { seq });
const fresh = tempDirs('vpf-batch-');

async function vm() {
  const dir = fresh();
  const rec = vmRecord('b');
  const journal = new Journal(join(dir, 'j'));
  journal.save(rec);
  const br = standInBridge();
  const v = new VmState(rec, 'br', br.inst, journal, { rulesPerVm: 1000, flowsPerVm: 100_000, msgsPerSec: 1e6 }, new Metrics(), silent);
  const path = join(dir, 'r.sock');
  await v.listen(path, join(dir, 'g.sock'));
  return { v, rec, br, journal, dir, path };
}

/**
 * Writes `msgs` in one write (so they form one batch); `got` fills with each request's final reply as it
 * arrives, to see that none came early (agent/ctl/channel.ts pipeline() only gives them all at the end).
 */
function pipelined(path: string, msgs: Buffer[]): { got: NlMessage[]; done: Promise<NlMessage[]> } {
  const got: NlMessage[] = [];
  const done = new Promise<NlMessage[]>((resolve, reject) => {
    const f = new NlFramer();
    const s = connect(path, () => s.write(Buffer.concat(msgs)));
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      for (const b of f.push(c)) got.push(parseMessages(b)[0]!);
      if (got.length === msgs.length) {
        s.end();
        resolve(got);
      }
    });
  });
  return { got, done };
}
const answers = (got: NlMessage[]) => got.map((m) => [m.seq, parseError(m).errno]);
const settle = () => new Promise((r) => setTimeout(r, 50));

/** Flow mods a restart would send: the journal reloaded, translated anew, diffed against the bridge. */
async function restartMods(dir: string, br: StandInBridge): Promise<{ mods: number; rec: VmRecord }> {
  const j = new Journal(join(dir, 'j'));
  const [rec] = j.loadAll();
  const sync = new FlowSync(rec!, new VfState(rec!), br.inst, j, new Metrics(), silent);
  const mods = await sync.reconcile('restart');
  j.close();
  return { mods, rec: rec! };
}

describe('pipelined batches (group commit)', () => {
  it('no request of a batch is answered before its bundle committed; then all are, in request order', async () => {
    const { v, br, path } = await vm();
    // A first rule, so the batch below takes the incremental path (its group exists).
    expect(answers(await pipelined(path, [add(udp(1, 1), 1)]).done)).toEqual([[1, 0]]);
    br.hold();
    const p = pipelined(path, [add(udp(1, 2), 2), add(udp(1, 3), 3), del(1, 1, 4), add(udp(1, 4), 5)]);
    await settle();
    expect(p.got).toEqual([]);
    br.open();
    expect(answers(await p.done)).toEqual([[2, 0], [3, 0], [4, 0], [5, 0]]);
    v.close();
  });

  it('a batch goes to the bridge as one bundle, and the bridge then holds what a restart computes (no flow mod on restart)', async () => {
    const { v, rec, br, dir, path } = await vm();
    await pipelined(path, [add(udp(1, 1), 1), add(udp(1, 2), 2)]).done;
    const before = br.applied.length;
    // Adds to an existing group, a rule added and deleted in the same batch, a delete of an older rule, a new group.
    const got = await pipelined(path, [add(udp(1, 3), 3), add(udp(1, 4), 4), del(1, 4, 5), del(1, 1, 6), add(udp(2, 1, 99), 7)]).done;
    expect(answers(got)).toEqual([[3, 0], [4, 0], [5, 0], [6, 0], [7, 0]]);
    expect(br.applied.length - before).toBe(1);
    // Only incremental again: an add to an existing group and a delete.
    await pipelined(path, [add(udp(2, 2, 98), 8), del(1, 2, 9)]).done;
    expect(br.applied.length - before).toBe(2);
    v.close();
    const live = rec.rules.map((e) => [e.rule.prio, e.rule.handle]);
    expect(live).toEqual([[1, 3], [2, 1], [2, 2]]);
    const restart = await restartMods(dir, br);
    expect(restart.rec.rules.map((e) => [e.rule.prio, e.rule.handle])).toEqual(live);
    expect(restart.mods).toBe(0);
  });

  it('a batch whose bundle is refused: every request in it is refused with EBUSY, and the bridge is repaired to what a restart computes', async () => {
    const { v, br, dir, path } = await vm();
    await pipelined(path, [add(udp(1, 1), 1)]).done;
    br.failNext = true;
    const got = await pipelined(path, [add(udp(1, 2), 2), add(udp(1, 3), 3), del(1, 1, 4)]).done;
    expect(answers(got)).toEqual([[2, Errno.EBUSY], [3, Errno.EBUSY], [4, Errno.EBUSY]]);
    // The refusal queued a reconcile from a dump; the next change follows it.
    expect(answers(await pipelined(path, [add(udp(1, 5), 5)]).done)).toEqual([[5, 0]]);
    v.close();
    expect((await restartMods(dir, br)).mods).toBe(0);
  });
});
