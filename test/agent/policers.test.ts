// Shared police actions on a VM's channel (agent/policers.ts through the guest
// requests): the tc action API and filters binding a police by index, answered
// as act_api.c / act_police.c on 6.1 answer; the bridge is a stand-in that
// records the meters and flows, so what the translator is handed shows; and the
// action API's policers survive a vpfd restart (journal), older journals load.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../agent/journal.js';
import type { VmRecord } from '../../agent/records.js';
import { Metrics } from '../../agent/metrics.js';
import { VmState } from '../../agent/vm.js';
import type { FlowInstaller, MeterStats } from '../../ovs/ctl/ofctl.js';
import type { OfFlow, OfMeter } from '../../ovs/openflow/flow.js';
import { cookieKind, cookieRuleId, FlowKind } from '../../translator/cookie.js';
import { Errno } from '../../rules/errors.js';
import type { PoliceAction } from '../../rules/model.js';
import { encodeFilterRequest, encodeFilterSelect, decodeFilterDump } from '../../rules/netlink/tc.js';
import { NlmF, NlmsgType, parseAttrs, parseError, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { TCA_ACT } from '../../rules/netlink/actions.js';
import { decodeActionReply, encodeActionRequest, RtmAction, TCA_ACT_FLAG, TCA_ROOT, type ActionRequest } from '../../rules/netlink/tcaction.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { exchange } from '../helpers/channel.js';

const PID = 0x77;
let seq = 1;
let dir: string;
let journal: Journal;
let vm: VmState | undefined;
let meters: OfMeter[] = [];
let sock = '';
/** The flows the bridge holds, as applied. */
const held = new Map<bigint, OfFlow>();
/** What a dump reads: packets (of 1000 bytes, just now) for the first flow of each rule and flow kind; 0 for the rest. */
let flowPackets: (rule: number, kind: number) => number = () => 0;
/** What meter-stats reads, by meter id. */
let meterCounts = new Map<number, MeterStats>();

const bridge: FlowInstaller = {
  dump: async () => {
    const seen = new Set<string>();
    return [...held.values()].map((f) => {
      const key = `${cookieRuleId(f.cookie)}/${cookieKind(f.cookie)}`;
      const packets = seen.has(key) ? 0 : flowPackets(cookieRuleId(f.cookie), cookieKind(f.cookie));
      seen.add(key);
      return { ...f, packets, bytes: packets * 1000, idleAgeSec: 0, durationSec: 5 } as never;
    });
  },
  apply: async (d) => {
    for (const c of d.del) held.delete(c);
    for (const f of d.add) held.set(f.cookie, f);
  },
  putMeters: async (m: OfMeter[]) => void (meters = m),
  pruneMeters: async () => undefined,
  portStats: async () => new Map(),
  meterStats: async () => meterCounts,
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
  held.clear();
  flowPackets = () => 0;
  meterCounts = new Map();
  const rec: VmRecord = { name: 'p', vfs: 2, ports: defaultPortMap(2), attach: {}, rules: [], nextRuleId: 1, zoneBase: 0, layout: [] };
  journal.save(rec);
  await start(rec);
});
afterEach(() => {
  vm?.close();
  journal.close();
  rmSync(dir, { recursive: true, force: true });
});

const one = (msg: Buffer): Promise<NlMessage[]> => exchange(sock, [msg]);

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
  it('keeps a police\'s cookie and dumps it back, after the index in a terse dump (tcf_action_dump_terse)', async () => {
    expect(ack(await addAction({ ...police(125000, 6), cookie: 'a1b2c3d4' })).errno).toBe(0);
    const r = await act({ op: 'dump', hdr: hdr(RtmAction.GET, NlmF.REQUEST | NlmF.DUMP), kind: 'police', flags: TCA_ACT_FLAG.LARGE_DUMP_ON | TCA_ACT_FLAG.TERSE_DUMP });
    // tcamsg (4 bytes), then TCA_ROOT_*: the TAB's one entry holds KIND, STATS, INDEX, COOKIE.
    const root = parseAttrs(r[0]!.payload.subarray(4), 'root');
    const entry = parseAttrs(parseAttrs(root.find((a) => a.type === TCA_ROOT.TAB)!.value, 'tab')[0]!.value, 'entry');
    expect(entry.map((a) => a.type)).toEqual([TCA_ACT.KIND, TCA_ACT.STATS, TCA_ACT.INDEX, TCA_ACT.COOKIE]);
    expect(entry.at(-1)!.value.toString('hex')).toBe('a1b2c3d4');
    const full = decodeActionReply((await getAction(6))[0]!);
    expect(full.ok && (full.value.actions[0]!.action as PoliceAction).cookie).toBe('a1b2c3d4');
  });

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

/** Each action of the filters on a representor, as a dump shows it: its counters and its tcf_t (ms). */
async function actionsShown(dev = 'vf0') {
  const r = await one(encodeFilterSelect('get', { dev, direction: 'ingress', chain: undefined, prio: 0, protocol: 0, handle: 0, kind: undefined }, { flags: NlmF.REQUEST | NlmF.DUMP, seq: seq++, pid: PID }));
  return r.flatMap((m) => {
    const d = m.type === 44 ? decodeFilterDump(m) : undefined;
    if (!d?.ok || !d.value.rule.actions.length) return [];
    const s = d.value.stats;
    return [d.value.rule.actions.map((a, i) => {
      const c = s.actions?.[i] ?? s;
      const t = s.actionTimes?.[i] ?? s;
      return { kind: a.kind, packets: c.packets, bytes: c.bytes, drops: c.drops, overlimits: c.overlimits ?? 0, installedMs: t.installedMs, lastUsedMs: t.lastUsedMs };
    })];
  });
}

/** The meter of the one police there is: `packets` in (1000 bytes each), `dropped` by its band. */
function meterSaw(packets: number, dropped: number): void {
  expect(meters).toHaveLength(1);
  meterCounts = new Map([[meters[0]!.id, { packets, bytes: packets * 1000, bands: [{ packets: dropped, bytes: dropped * 1000 }] }]]);
}

// act_api.c tcf_action_exec: each action counts the packets it runs on (its own bstats); a police (act_police.c)
// ends the list for what it drops. tc counts 986 bytes of a 1000-byte frame (no Ethernet header).
describe('counters of the actions after a police', () => {
  const redirect = (dev: string, dst: string, to: string, index: number) => filter(`dev ${dev} ingress prio 1 protocol ip flower dst_ip ${dst} action police index ${index} action mirred egress redirect dev ${to}`);

  it('a police one filter feeds: the mirred after it counts the packets less the meter\'s drops, exactly', async () => {
    await addAction(police(125000, 5));
    await redirect('vf0', '10.0.0.1', 'vf1', 5);
    flowPackets = (rule, kind) => (rule === 1 && kind === FlowKind.RULE ? 100 : 0);
    meterSaw(100, 60);
    const [[p, m]] = (await actionsShown()) as [[any, any]];
    expect(p).toMatchObject({ kind: 'police', packets: 100, bytes: 98600, drops: 60, overlimits: 60 });
    expect(m).toMatchObject({ kind: 'mirred', packets: 40, bytes: 40 * 986, drops: 0, overlimits: 0 });
  });

  it('a police two filters feed: its drops are shared as their packets are, and the mirreds sum to what passed', async () => {
    await addAction(police(125000, 5));
    await redirect('vf0', '10.0.0.1', 'vf1', 5);
    await redirect('vf1', '10.0.0.2', 'vf0', 5);
    flowPackets = (rule, kind) => (kind !== FlowKind.RULE ? 0 : rule === 1 ? 75 : rule === 2 ? 25 : 0);
    meterSaw(100, 60);
    const [[p0, m0]] = (await actionsShown('vf0')) as [[any, any]];
    const [[p1, m1]] = (await actionsShown('vf1')) as [[any, any]];
    expect([p0.packets, p0.drops, p1.packets, p1.drops]).toEqual([100, 60, 100, 60]);
    expect([m0.packets, m1.packets]).toEqual([30, 10]);
    expect([m0.bytes, m1.bytes]).toEqual([30 * 986, 10 * 986]);
    // A filter gone fed the meter half its packets: the drops of now are shared, the gone filter's part not given to anyone.
    meterSaw(200, 100);
    flowPackets = (rule, kind) => (kind !== FlowKind.RULE ? 0 : rule === 1 ? 60 : rule === 2 ? 40 : 0);
    const [[, n0]] = (await actionsShown('vf0')) as [[any, any]];
    const [[, n1]] = (await actionsShown('vf1')) as [[any, any]];
    expect([n0.packets, n1.packets]).toEqual([30, 20]);
  });

  it('conform drop: the police drops every packet (act_police.c counts a conforming SHOT too) and the action after it runs on none, never used', async () => {
    await addAction({ ...police(125000, 5), control: { kind: 'drop' } });
    await redirect('vf0', '10.0.0.1', 'vf1', 5);
    flowPackets = (rule, kind) => (rule === 1 && kind === FlowKind.RULE ? 100 : 0);
    meterSaw(100, 60);
    const [[p, m]] = (await actionsShown()) as [[any, any]];
    expect(p).toMatchObject({ packets: 100, drops: 100, overlimits: 60 });
    expect(m).toMatchObject({ packets: 0, bytes: 0 });
    expect(m.lastUsedMs).toBe(m.installedMs);
  });

  it('exceed pipe (no meter can be it: the rule is trapped): its trap counts for nothing, the guest software copy counts what it runs', async () => {
    await addAction(police(125000, 6, { kind: 'pipe' }));
    await redirect('vf0', '10.0.0.1', 'vf1', 6);
    expect(meters).toEqual([]);
    // The trap hands the packets to the guest, whose kernel runs the filter in software and counts there.
    flowPackets = (rule, kind) => (rule === 1 && kind === FlowKind.TRAP ? 50 : 0);
    const [[p, m]] = (await actionsShown()) as [[any, any]];
    expect(p).toMatchObject({ packets: 0, drops: 0, overlimits: 0 });
    expect(m).toMatchObject({ packets: 0, bytes: 0 });
  });
});

// act_police.c tcf_police_dump -> tcf_tm_dump: the police's own tcf_t. tcf_idr_create stamps install (and lastuse)
// when the action is created; tcf_lastuse_update each packet it runs on, through whichever filter.
describe('a police action\'s timestamps are its own', () => {
  it('installed when the action API created it, used when a packet last reached it; the filter\'s other actions theirs', async () => {
    vm!.close();
    const rec: VmRecord = { name: 'p', vfs: 2, ports: defaultPortMap(2), attach: {}, rules: [], nextRuleId: 1, zoneBase: 0, layout: [], policers: [{ index: 5, police: police(125000, 5), installedAt: Date.now() - 60_000 }] };
    journal.save(rec);
    await start(rec);
    await vm!.reconcile('start');
    await filter('dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 action police index 5 action mirred egress redirect dev vf1');
    let [[p, m]] = (await actionsShown()) as [[any, any]];
    // Not used yet: lastuse is the install, for each action.
    expect(p.installedMs).toBeGreaterThanOrEqual(59_000);
    expect(p.lastUsedMs).toBe(p.installedMs);
    expect(m.installedMs).toBeLessThan(5_000);
    flowPackets = (rule, kind) => (rule === 1 && kind === FlowKind.RULE ? 10 : 0);
    meterSaw(10, 0);
    [[p, m]] = (await actionsShown()) as [[any, any]];
    expect(p.installedMs).toBeGreaterThanOrEqual(59_000);
    // The last packet that reached the police is the filter's last one (its flows', as recent as the filter itself).
    expect(p.lastUsedMs).toBe(m.lastUsedMs);
    expect(p.lastUsedMs).toBeLessThan(5_000);
    expect(m.installedMs).toBeLessThan(5_000);
  });
});
