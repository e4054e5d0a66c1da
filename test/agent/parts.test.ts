// The VM's parts alone (docs/architecture.md): the filter table without I/O,
// the flow synchronizer against an injected installer, and the request path,
// pipelined batches included, over a real channel socket with a stand-in bridge.
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { pipeline } from '../../agent/ctl/channel.js';
import { FilterTable } from '../../agent/filters.js';
import { FlowSync } from '../../agent/flowsync.js';
import { Journal } from '../../agent/journal.js';
import { Metrics } from '../../agent/metrics.js';
import { VfState } from '../../agent/vfstate.js';
import { VmState } from '../../agent/vm.js';
import { Errno, VpfError } from '../../rules/errors.js';
import type { FlowerRule } from '../../rules/model.js';
import { NlmF, parseError, parseMessages } from '../../rules/netlink/nlmsg.js';
import { decodeTcNlMessage, encodeFilterRequest } from '../../rules/netlink/tc.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { vmRecord } from '../helpers/records.js';
import { standInBridge } from '../helpers/standin.js';
import { tempDirs } from '../helpers/tmpdirs.js';

const ADD = NlmF.REQUEST | NlmF.ACK | NlmF.EXCL | NlmF.CREATE;
const rule = (args: string) => (parseFilter(splitArgs(args)) as { value: FlowerRule }).value;
const udp = (port: number, extra = '') => rule(`dev vf0 ingress prio 1 ${extra} protocol ip flower ip_proto udp dst_port ${port} action drop`);
const silent = pino({ level: 'silent' });
const fresh = tempDirs('vpf-parts-');

describe('filter table', () => {
  it('places a filter without prio as cls_api does, refuses a duplicate with EEXIST, and rolls back to a snapshot', () => {
    const rec = vmRecord('t');
    const t = new FilterTable(rec, 10);
    const before = t.snapshot();
    const auto = rule('dev vf0 ingress protocol ip flower ip_proto udp action drop');
    t.filterChange({ type: 'filter', op: 'new', hdr: { seq: 1 } as never, rule: auto }, ADD);
    t.sync();
    expect(rec.rules.map((e) => [e.rule.prio, e.rule.handle])).toEqual([[0xc000, 1]]);
    const dup = { ...auto, handle: 1 };
    expect(() => t.filterChange({ type: 'filter', op: 'new', hdr: { seq: 2 } as never, rule: dup }, ADD)).toThrow(expect.objectContaining({ errno: Errno.EEXIST }));
    t.rollback(before);
    expect(rec.rules).toEqual([]);
    expect(t.table.size).toBe(0);
  });

  it('refuses past the rule quota with ENOSPC', () => {
    const t = new FilterTable(vmRecord('t'), 1);
    t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: udp(1) }, ADD);
    expect(() => t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: udp(2) }, ADD)).toThrow(VpfError);
  });
});

describe('flow synchronizer', () => {
  function setup() {
    const rec = vmRecord('t');
    const j = new Journal(join(fresh(), 'j'));
    j.save(rec);
    const r = standInBridge();
    const filters = new FilterTable(rec, 100);
    const sync = new FlowSync(rec, new VfState(rec), r.inst, j, new Metrics(), silent);
    const add = async (port: number) => {
      filters.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: udp(port) }, ADD);
      filters.sync();
      const plan = sync.plan(filters.table);
      expect(sync.refusal(plan, filters.table, 1e6)).toBeUndefined();
      await sync.commit(plan, filters.table, 'test');
    };
    return { rec, r, sync, add };
  }

  it('sends only the difference once the installed flows are known, and reads one dump when they are not', async () => {
    const { r, sync, add } = setup();
    await sync.reconcile('start');
    expect(r.dumps()).toBe(1);
    await add(1);
    await add(2);
    // The second add sends its own flows only: nothing of the first again, no dump.
    expect(r.dumps()).toBe(1);
    const [, second] = r.applied.slice(-2);
    expect(second!.del).toEqual([]);
    const earlier = new Set(r.applied.slice(0, -1).flatMap((d) => d.add.map((f) => f.cookie)));
    expect(second!.add.length).toBeGreaterThan(0);
    expect(second!.add.filter((f) => earlier.has(f.cookie))).toEqual([]);
    expect((await r.inst.dump()).length).toBe(sync.flowCount);
  });

  it('after a failed bundle the installed table is unknown: the next change reads a dump and repairs', async () => {
    const { r, sync, add } = setup();
    await sync.reconcile('start');
    // A group's first rule takes the whole-translation path; warm up so the failure below is on the incremental one.
    await add(1);
    expect(r.dumps()).toBe(1);
    r.failNext = true;
    await expect(add(2)).rejects.toThrow('bundle refused');
    await add(3);
    expect(r.dumps()).toBe(2);
    // Every rule's flows are on the bridge: the failed one's came back with the repair.
    const held = new Set((await r.inst.dump()).map((f) => f.cookie));
    expect(held.size).toBe(sync.flowCount);
  });
});

describe('guest requests', () => {
  async function vm(msgsPerSec = 1e6) {
    const dir = fresh();
    const rec = vmRecord('t');
    const j = new Journal(join(dir, 'j'));
    j.save(rec);
    const metrics = new Metrics();
    const v = new VmState(rec, 'br', standInBridge().inst, j, { rulesPerVm: 100, flowsPerVm: 10_000, msgsPerSec }, metrics, silent);
    await v.listen(join(dir, 'r.sock'), join(dir, 'g.sock'));
    return { v, rec, metrics, path: join(dir, 'r.sock') };
  }
  const refusals = (m: Metrics) => m.render().split('\n').filter((l) => l.startsWith('vpf_channel_errors_total{')).map((l) => l.replace(/.*errno="(\w+)".* (\d+)$/, '$1 $2'));

  it('a pipelined batch with a refusal in the middle: each request gets its own answer, the refusal counted once', async () => {
    const { v, rec, metrics, path } = await vm();
    const msgs = [encodeFilterRequest(udp(1, 'handle 1'), { seq: 1 }), encodeFilterRequest(udp(2, 'handle 1'), { seq: 2 }), encodeFilterRequest(udp(3, 'handle 2'), { seq: 3 })];
    const got = await pipeline(path, msgs);
    v.close();
    expect(got.map((m) => [m.seq, parseError(m).errno])).toEqual([[1, 0], [2, Errno.EEXIST], [3, 0]]);
    expect(rec.rules.map((e) => e.rule.handle)).toEqual([1, 2]);
    expect(refusals(metrics)).toEqual(['EEXIST 1']);
  });

  it('a batch the translator refuses in the middle is retried one by one: only the culprit is refused, once, and the rate limit counts each request once', async () => {
    // Three requests, a quota of three per second: counting the retried requests again would refuse the last with EBUSY.
    const { v, rec, metrics, path } = await vm(3);
    const egress = rule('dev vf0 egress prio 2 protocol ip flower ip_proto udp action drop');
    const got = await pipeline(path, [encodeFilterRequest(udp(1), { seq: 1 }), encodeFilterRequest(egress, { seq: 2 }), encodeFilterRequest(udp(3), { seq: 3 })]);
    v.close();
    expect(got.map((m) => [m.seq, parseError(m).errno])).toEqual([[1, 0], [2, Errno.EOPNOTSUPP], [3, 0]]);
    expect(rec.rules.map((e) => e.rule.direction)).toEqual(['ingress', 'ingress']);
    expect(refusals(metrics)).toEqual(['EOPNOTSUPP 1']);
  });

  it('a rule refused alone leaves the table as it was', async () => {
    const { v, rec, path } = await vm();
    const msg = encodeFilterRequest(rule('dev vf0 egress prio 2 protocol ip flower ip_proto udp action drop'), { seq: 9 });
    expect(decodeTcNlMessage(parseMessages(msg)[0]!).ok).toBe(true);
    const [got] = await pipeline(path, [msg]);
    v.close();
    expect(parseError(got!).errno).toBe(Errno.EOPNOTSUPP);
    expect(rec.rules).toEqual([]);
  });
});
