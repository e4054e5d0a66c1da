// Shared police actions on a VM's channel (agent/policers.ts through the guest
// requests): the tc action API and filters binding a police by index, answered
// as act_api.c / act_police.c on 6.1 answer; the bridge is a stand-in that
// records the meters and flows, so what the translator is handed shows; and the
// action API's policers survive a vpfd restart (journal), older journals load.
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../agent/journal.js';
import type { VmRecord } from '../../agent/records.js';
import { Metrics } from '../../agent/metrics.js';
import { VmState } from '../../agent/vm.js';
import type { FlowInstaller } from '../../ovs/ctl/ofctl.js';
import type { OfMeter } from '../../ovs/openflow/flow.js';
import { Errno } from '../../rules/errors.js';
import type { PoliceAction } from '../../rules/model.js';
import { encodeChainRequest, encodeFilterRequest, encodeFilterSelect, decodeFilterDump } from '../../rules/netlink/tc.js';
import { NlmF, NlmsgType, parseError, parseMessages, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { decodeActionReply, encodeActionRequest, RtmAction, TCA_ACT_FLAG, type ActionRequest } from '../../rules/netlink/tcaction.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { defaultPortMap } from '../../translator/portmap.js';

const PID = 0x77;
let seq = 1;
let dir: string;
let journal: Journal;
let vm: VmState | undefined;
let meters: OfMeter[] = [];
let sock = '';

const bridge: FlowInstaller = {
  dump: async () => [],
  apply: async () => undefined,
  putMeters: async (m: OfMeter[]) => void (meters = m),
  pruneMeters: async () => undefined,
  portStats: async () => new Map(),
};

async function start(rec: VmRecord): Promise<void> {
  vm = new VmState(rec, 'br', bridge, journal, { rulesPerVm: 100, flowsPerVm: 10_000, msgsPerSec: 1e6 }, new Metrics(), pino({ level: 'silent' }));
  sock = join(dir, `v${seq++}.sock`);
  await vm.listen(sock, `${sock}.genl`);
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vpf-policers-'));
  journal = new Journal(join(dir, 'j'));
  meters = [];
  const rec: VmRecord = { name: 'p', vfs: 2, ports: defaultPortMap(2), attach: {}, rules: [], nextRuleId: 1, zoneBase: 0, layout: [] };
  journal.save(rec);
  await start(rec);
});
afterEach(() => {
  vm?.close();
  journal.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One request and what came back before a probe's answer (an empty chain dump). */
function one(msg: Buffer): Promise<NlMessage[]> {
  const probe = encodeChainRequest('get', '', 'ingress', undefined, { seq: 0xfffffff0, flags: NlmF.REQUEST | NlmF.DUMP });
  return new Promise((resolve, reject) => {
    const s = connect(sock, () => s.write(Buffer.concat([msg, probe])));
    let buf = Buffer.alloc(0);
    const got: NlMessage[] = [];
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 16 && buf.readUInt32LE(0) <= buf.length) {
        const len = buf.readUInt32LE(0);
        const m = parseMessages(buf.subarray(0, len))[0]!;
        buf = buf.subarray((len + 3) & ~3);
        if (m.seq !== 0xfffffff0) got.push(m);
        else if (m.type === NlmsgType.DONE) {
          s.end();
          resolve(got);
        }
      }
    });
  });
}

const hdr = (type: number, flags: number) => ({ type, flags, seq: seq++, pid: PID });
/** A police as OVS makes its meters (lib/tc.c): conform pipe on to the next action, exceed drop. */
const police = (rate: number, index = 0, exceed: PoliceAction['exceed'] = { kind: 'drop' }): PoliceAction => ({ kind: 'police', rate, burst: 10240, control: { kind: 'pipe' }, exceed, ...(index ? { index } : {}) });
const act = (r: ActionRequest) => one(encodeActionRequest(r));
const addAction = (p: PoliceAction, replace = false) => act({ op: 'new', hdr: hdr(RtmAction.NEW, NlmF.REQUEST | NlmF.ACK | NlmF.CREATE | (replace ? NlmF.REPLACE : NlmF.EXCL)), replace, actions: [p] });
const delAction = (index: number) => act({ op: 'del', hdr: hdr(RtmAction.DEL, NlmF.REQUEST | NlmF.ACK), refs: [{ kind: 'police', index }] });
const flush = () => act({ op: 'flush', hdr: hdr(RtmAction.DEL, NlmF.REQUEST | NlmF.ACK | NlmF.ROOT), kind: 'police' });
const getAction = (index: number) => act({ op: 'get', hdr: hdr(RtmAction.GET, NlmF.REQUEST), refs: [{ kind: 'police', index }] });
const ls = async () => {
  const r = await act({ op: 'dump', hdr: hdr(RtmAction.GET, NlmF.REQUEST | NlmF.DUMP), kind: 'police', flags: TCA_ACT_FLAG.LARGE_DUMP_ON });
  expect(r.at(-1)!.type).toBe(NlmsgType.DONE);
  return r.slice(0, -1).flatMap((m) => (decodeActionReply(m) as { value: { actions: { action: PoliceAction; ref: number; bind: number }[] } }).value.actions).map((a) => ({ index: a.action.index, rate: a.action.rate, ref: a.ref, bind: a.bind }));
};
/**
 * A filter add; `police index N` alone is sent as real tc sends it (tc_police with
 * only the index; this repo's tc-syntax parser still wants a rate, so it is built here).
 */
const filter = (line: string) => {
  const ref = /action police index (\d+)( |$)/.exec(line);
  const rest = ref ? line.replace(ref[0], '') : line;
  const r = parseFilter(splitArgs(/ action /.test(` ${rest}`) ? rest : `${rest} action drop`));
  if (!r.ok) throw new Error(r.error.message);
  if (ref) r.value.actions = [{ kind: 'police', index: Number(ref[1]), control: { kind: 'pass' }, exceed: { kind: 'reclassify' } }, ...(/ action /.test(` ${rest}`) ? r.value.actions : [])];
  return one(encodeFilterRequest(r.value, { seq: seq++, pid: PID }));
};
const ack = (r: NlMessage[]) => {
  expect(r).toHaveLength(1);
  return parseError(r[0]!);
};
/** The police of each filter on a representor, as the dump shows it: index, rate, ref, bind. */
async function shown(dev = 'vf0') {
  const r = await one(encodeFilterSelect('get', { dev, direction: 'ingress', chain: undefined, prio: 0, protocol: 0, handle: 0, kind: undefined }, { flags: NlmF.REQUEST | NlmF.DUMP, seq: seq++, pid: PID }));
  const out: { prio: number; index?: number; rate?: number; ref: number; bind: number }[] = [];
  for (const m of r) {
    if (m.type !== 44) continue;
    const d = decodeFilterDump(m);
    if (!d.ok || !d.value.rule.actions.length) continue;
    const raw = m.payload.toString('hex');
    const p = d.value.rule.actions.find((a) => a.kind === 'police') as PoliceAction;
    // tc_police's refcnt/bindcnt (offsets 44/48 of TCA_POLICE_TBF): found after the index in the raw dump.
    const tbfAt = raw.indexOf(Buffer.from([0x3c, 0x00, 0x01, 0x00]).toString('hex'));
    const tbf = Buffer.from(raw.slice(tbfAt + 8, tbfAt + 8 + 112), 'hex');
    out.push({ prio: d.value.rule.prio, index: p.index, rate: p.rate, ref: tbf.readInt32LE(44), bind: tbf.readInt32LE(48) });
  }
  return out;
}

describe('the action API', () => {
  it('add, EEXIST without replace, get, ENOENT, and index 0 takes the lowest free', async () => {
    expect(ack(await addAction(police(125000, 5))).errno).toBe(0);
    expect(ack(await addAction(police(125000, 5)))).toMatchObject({ errno: Errno.EEXIST });
    expect(ack(await addAction(police(250000)))).toMatchObject({ errno: 0 });
    expect(await ls()).toEqual([{ index: 1, rate: 250000, ref: 1, bind: 0 }, { index: 5, rate: 125000, ref: 1, bind: 0 }]);
    const g = await getAction(5);
    expect(g.map((m) => [m.type, m.flags])).toEqual([[RtmAction.GET, 0]]);
    expect(ack(await getAction(9))).toMatchObject({ errno: Errno.ENOENT, message: 'TC action with specified index not found' });
    expect(ack(await delAction(9))).toMatchObject({ errno: Errno.ENOENT });
    expect(ack(await delAction(5)).errno).toBe(0);
    expect((await ls()).map((a) => a.index)).toEqual([1]);
  });

  it('other kinds are refused with the reason; a standalone police cannot goto a chain', async () => {
    const r = await act({ op: 'new', hdr: hdr(RtmAction.NEW, NlmF.REQUEST | NlmF.ACK | NlmF.CREATE), replace: false, actions: [{ kind: 'gact', control: { kind: 'drop' }, index: 3 }] });
    expect(ack(r)).toMatchObject({ errno: Errno.EOPNOTSUPP });
    expect(ack(await addAction(police(125000, 4, { kind: 'goto', chain: 1 })))).toMatchObject({ errno: Errno.EINVAL, message: "can't goto NULL proto/chain" });
  });
});

describe('filters bind shared police actions', () => {
  it('a filter naming an index binds it and runs its parameters; ref/bind count; del of a bound police is EPERM', async () => {
    await addAction(police(125000, 5));
    expect(ack(await filter('dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 action police index 5')).errno).toBe(0);
    expect(ack(await filter('dev vf1 ingress prio 1 protocol ip flower action police rate 2mbit burst 20k conform-exceed drop index 5')).errno).toBe(0);
    expect(await shown('vf0')).toEqual([{ prio: 1, index: 5, rate: 125000, ref: 3, bind: 2 }]);
    expect(await shown('vf1')).toEqual([{ prio: 1, index: 5, rate: 125000, ref: 3, bind: 2 }]);
    expect(ack(await delAction(5))).toMatchObject({ errno: Errno.EPERM, message: 'Failed to delete TC action' });
    expect(ack(await flush())).toMatchObject({ errno: Errno.EPERM });
    expect(await ls()).toEqual([{ index: 5, rate: 125000, ref: 3, bind: 2 }]);
  });

  it('the translator gets each bound filter with the shared parameters; a replace reaches every bound filter and its meter', async () => {
    await addAction(police(125000, 5));
    await addAction(police(125000, 6));
    await filter('dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 action police index 5 action mirred egress redirect dev vf1');
    await filter('dev vf1 ingress prio 1 protocol ip flower dst_ip 10.0.0.2 action police index 5 action mirred egress redirect dev vf0');
    await filter('dev vf1 ingress prio 2 protocol ip flower dst_ip 10.0.0.3 action police index 6 action mirred egress redirect dev vf0');
    const ids = () => new Set(meters.map((m) => m.id));
    // Indexes 5 and 6 have the same rate: two buckets still (translator change pending, see the report), so only count 5's.
    expect(meters.filter((m) => /rate=1000 /.test(m.spec)).length).toBeGreaterThanOrEqual(1);
    // The translator is handed the full parameters (1 Mbit/s = 1000 kbps) with the index.
    expect(meters[0]!.spec).toMatch(/kbps .*rate=1000 /);
    expect(ack(await addAction(police(500000, 5, { kind: 'drop' }), true)).errno).toBe(0);
    expect(await shown('vf0')).toEqual([{ prio: 1, index: 5, rate: 500000, ref: 3, bind: 2 }]);
    expect(await shown('vf1')).toEqual([{ prio: 1, index: 5, rate: 500000, ref: 3, bind: 2 }, { prio: 2, index: 6, rate: 125000, ref: 2, bind: 1 }]);
    // Index 5's filters moved to the new rate together; index 6 kept its own.
    expect(meters.map((m) => /rate=(\d+) /.exec(m.spec)?.[1]).sort()).toEqual(['1000', '4000']);
    expect(ids().size).toBe(2);
  });

  // act_police.c: an action's bucket and counters live as long as it does. A meter renumbered under it
  // (mod-meter with another action's rate) would refill the bucket and zero what `tc -s` shows.
  it('a police keeps its meter id when a rule with another police before it goes, and across a restart', async () => {
    const rateOf = (id: number) => /rate=(\d+) /.exec(meters.find((m) => m.id === id)?.spec ?? '')?.[1];
    await addAction(police(250000, 3));
    await addAction(police(125000, 9));
    await filter('dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.3 action police index 3 action mirred egress redirect dev vf1');
    await filter('dev vf1 ingress prio 5 protocol ip flower dst_ip 10.0.0.9 action police index 9 action mirred egress redirect dev vf0');
    expect(meters).toHaveLength(2);
    const nine = meters.find((m) => /rate=1000 /.test(m.spec))!.id;
    // Index 3's filter goes (its police stays, unbound, with a meter of its own); index 9's meter is the same one.
    await one(encodeFilterSelect('del', { dev: 'vf0', direction: 'ingress', chain: undefined, prio: 1, protocol: 0, handle: 0, kind: undefined }, { seq: seq++, pid: PID }));
    expect(meters).toHaveLength(2);
    expect(rateOf(nine)).toBe('1000');
    const ids = meters.map((m) => m.id).sort();
    vm!.close();
    journal.close();
    journal = new Journal(join(dir, 'j'));
    meters = [];
    await start(journal.loadAll()[0]!);
    await vm!.reconcile('restart');
    expect(meters.map((m) => m.id).sort()).toEqual(ids);
    expect(rateOf(nine)).toBe('1000');
  });

  // act_api.c: an action of the action API lives until deleted, bound or not, and its bucket and counters with it.
  it('a police of the action API is a meter of its own while no filter binds it, with the same id before and after', async () => {
    await addAction(police(125000, 4));
    expect(meters).toHaveLength(1);
    const [{ id }] = meters as [OfMeter];
    await filter('dev vf0 ingress prio 1 protocol ip flower action police index 4 action mirred egress redirect dev vf1');
    expect(meters.map((m) => m.id)).toEqual([id]);
    await one(encodeFilterSelect('del', { dev: 'vf0', direction: 'ingress', chain: undefined, prio: 1, protocol: 0, handle: 0, kind: undefined }, { seq: seq++, pid: PID }));
    expect(meters.map((m) => m.id)).toEqual([id]);
    expect(ack(await delAction(4)).errno).toBe(0);
    expect(meters).toEqual([]);
  });

  it('a missing index is created with the filter (no rate: 6.1 accepts it); filters free what they created; flush stops at a bound one', async () => {
    await addAction(police(125000, 2));
    expect(ack(await filter('dev vf0 ingress prio 1 protocol ip flower action police index 7')).errno).toBe(0);
    expect(ack(await filter('dev vf0 ingress prio 2 protocol ip flower action police rate 3mbit burst 30k conform-exceed drop')).errno).toBe(0);
    expect(await ls()).toEqual([
      { index: 1, rate: 375000, ref: 1, bind: 1 },
      { index: 2, rate: 125000, ref: 1, bind: 0 },
      { index: 7, rate: undefined, ref: 1, bind: 1 },
    ]);
    // Index 1 is bound and first: nothing goes, a bare EPERM.
    expect(ack(await flush())).toEqual({ errno: Errno.EPERM, request: expect.anything() });
    await one(encodeFilterSelect('del', { dev: 'vf0', direction: 'ingress', chain: undefined, prio: 2, protocol: 0, handle: 0, kind: undefined }, { seq: seq++, pid: PID }));
    // Now 2 goes, 7 is bound: an ACK with the warning.
    expect(ack(await flush())).toMatchObject({ errno: 0, message: 'Unable to flush all TC actions' });
    expect(await ls()).toEqual([{ index: 7, rate: undefined, ref: 1, bind: 1 }]);
  });

  it('offload flags: a standalone police bound by a skip_hw filter is EINVAL', async () => {
    await addAction(police(125000, 5));
    expect(ack(await filter('dev vf0 ingress prio 1 protocol ip flower skip_hw action police index 5'))).toMatchObject({ errno: Errno.EINVAL, message: 'Mismatch between action and filter offload flags' });
    expect(await ls()).toEqual([{ index: 5, rate: 125000, ref: 1, bind: 0 }]);
  });
});

describe('restart', () => {
  it('the action API policers and the bindings survive a vpfd restart', async () => {
    await addAction(police(125000, 5));
    await addAction(police(250000, 8));
    await filter('dev vf0 ingress prio 1 protocol ip flower action police index 5');
    await addAction(police(500000, 5), true);
    const before = await ls();
    vm!.close();
    journal.close();
    journal = new Journal(join(dir, 'j'));
    const [rec] = journal.loadAll();
    await start(rec!);
    expect(await ls()).toEqual(before);
    expect(before).toEqual([{ index: 5, rate: 500000, ref: 2, bind: 1 }, { index: 8, rate: 250000, ref: 1, bind: 0 }]);
    expect(ack(await delAction(8)).errno).toBe(0);
    expect(ack(await delAction(5))).toMatchObject({ errno: Errno.EPERM });
  });

  it('a journal of the previous release (no policers) loads: filter-created police are derived from the rules', async () => {
    vm!.close();
    journal.close();
    const rule = parseFilter(splitArgs('dev vf0 ingress prio 1 protocol ip flower action police rate 1mbit burst 10k index 4'));
    if (!rule.ok) throw new Error('parse');
    const old = { name: 'p', vfs: 2, ports: defaultPortMap(2), attach: {}, rules: [{ id: 1, rule: rule.value, installedAt: 1, actIndex: [4] }], nextRuleId: 2, zoneBase: 0, layout: [], epoch: 7 };
    const d2 = join(dir, 'old');
    journal = new Journal(d2);
    writeFileSync(join(d2, 'p.json'), JSON.stringify(old));
    const [rec] = journal.loadAll();
    await start(rec!);
    expect(await ls()).toEqual([{ index: 4, rate: 125000, ref: 1, bind: 1 }]);
  });
});
