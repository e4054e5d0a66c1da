// A VM's guest channel answered as a Linux 6.1 kernel answers (af_netlink.c
// netlink_rcv_skb/netlink_ack, cls_api.c, rtnetlink.c): raw netlink over the
// channel socket against a VmState whose bridge is a stand-in, so each rule of
// docs/protocol.md is checked in milliseconds (OVS itself: daemon.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../agent/journal.js';
import type { VmRecord } from '../../agent/records.js';
import { Metrics } from '../../agent/metrics.js';
import { VmState } from '../../agent/vm.js';
import type { FlowInstaller } from '../../ovs/ctl/ofctl.js';
import { Errno } from '../../rules/errors.js';
import type { FlowerRule } from '../../rules/model.js';
import { encodeDevGetRequest, encodeEswitchRequest, encodeFamilyRequest } from '../../rules/netlink/devlink.js';
import { encodeGetLinkRequest, IFLA } from '../../rules/netlink/link.js';
import { AttrWriter, attrMap, buildMessage, NlmF, NlmsgType, parseAttrs, parseError, read, Rtm, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { CLS_FLAGS, decodeFilterDump, encodeChainRequest, encodeFilterRequest, encodeFilterSelect, TCA, type FilterSelector } from '../../rules/netlink/tc.js';
import { F } from '../../rules/netlink/flowerKeys.js';
import { TCA_ACT } from '../../rules/netlink/actions.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { exchange as exchangeOn } from '../helpers/channel.js';

/** The requester's netlink port id, as the forwarder writes it (docs/protocol.md, C1). */
const PID = 0x1234abcd;
const ADD = NlmF.REQUEST | NlmF.ACK | NlmF.EXCL | NlmF.CREATE;
const REPLACE = NlmF.REQUEST | NlmF.ACK | NlmF.CREATE; // what `tc filter replace` sends
const CHANGE = NlmF.REQUEST | NlmF.ACK; // `tc filter change`

const noBridge: FlowInstaller = {
  dump: async () => [],
  apply: async () => undefined,
  putMeters: async () => undefined,
  pruneMeters: async () => undefined,
  portStats: async () => new Map(),
};

let dir: string;
let vm: VmState;
let seq = 100;
const paths = (n: number) => ({ route: join(dir, `v${n}.sock`), genl: join(dir, `v${n}.genl.sock`) });
let at = { route: '', genl: '' };

async function startVm(n: number, rec: VmRecord, journal: Journal): Promise<void> {
  vm = new VmState(rec, 'br', noBridge, journal, { rulesPerVm: 100, flowsPerVm: 10_000, msgsPerSec: 1e6 }, new Metrics(), pino({ level: 'silent' }));
  at = paths(n);
  await vm.listen(at.route, at.genl);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vpf-tcstate-'));
  const journal = new Journal(join(dir, 'j'));
  const rec: VmRecord = { name: 't', vfs: 2, ports: defaultPortMap(2), attach: {}, rules: [], nextRuleId: 1, zoneBase: 0, layout: [] };
  journal.save(rec);
  await startVm(0, rec, journal);
});
afterAll(() => {
  vm?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What `msgs` got on the VM's route channel, or on its devlink channel when `path` is that one. */
const exchange = (msgs: Buffer[], path = at.route): Promise<NlMessage[]> => exchangeOn(path, msgs, path !== at.route);
const one = async (msg: Buffer, path?: string) => exchange([msg], path);
const rule = (line: string): FlowerRule => {
  const r = parseFilter(splitArgs(line));
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};
const add = (line: string, flags = ADD) => one(encodeFilterRequest(rule(line), { flags, seq: ++seq, pid: PID }));
const errOf = (replies: NlMessage[]) => {
  expect(replies).toHaveLength(1);
  expect(replies[0]!.type).toBe(NlmsgType.ERROR);
  return parseError(replies[0]!);
};
const sel = (s: Partial<FilterSelector>): FilterSelector => ({ dev: 'vf0', direction: 'ingress', chain: undefined, prio: 0, protocol: 0, handle: 0, kind: undefined, ...s });
const dump = (s: Partial<FilterSelector> = {}) => one(encodeFilterSelect('get', sel(s), { flags: NlmF.REQUEST | NlmF.DUMP, seq: ++seq, pid: PID }));
const del = (s: Partial<FilterSelector>) => one(encodeFilterSelect('del', sel(s), { seq: ++seq, pid: PID }));
const chainReq = (op: 'new' | 'del' | 'get', chain: number | undefined, flags?: number, dev = 'vf1') => one(encodeChainRequest(op, dev, 'ingress', chain, { seq: ++seq, pid: PID, ...(flags !== undefined ? { flags } : {}) }));

/** A dump entry as `tc filter show` reads it: (chain, prio, handle), handle 0 for the bare tcf_proto entry. */
function entry(m: NlMessage): { chain: number; prio: number; handle: number; bare: boolean } {
  const attrs = attrMap(parseAttrs(m.payload.subarray(20), 'tcmsg'));
  return { chain: read.u32(attrs.get(TCA.CHAIN)!, 'chain'), prio: m.payload.readUInt32LE(16) >>> 16, handle: m.payload.readUInt32LE(8), bare: !attrs.has(TCA.OPTIONS) };
}
const entries = (replies: NlMessage[]) => replies.filter((m) => m.type === Rtm.NEWTFILTER).map(entry);

/** Per action: (kind, index) as tcf_action_dump fills them. */
function actionIndexes(m: NlMessage): [string, number][] {
  const opts = attrMap(parseAttrs(m.payload.subarray(20), 'tcmsg')).get(TCA.OPTIONS)!;
  const act = attrMap(parseAttrs(opts.value, 'flower')).get(F.ACT);
  if (!act) return [];
  return parseAttrs(act.value, 'acts').map((a) => {
    const x = attrMap(parseAttrs(a.value, 'act'));
    const opt = parseAttrs(x.get(TCA_ACT.OPTIONS)!.value, 'opts');
    // tc_gen starts every action's parms struct: u32 index first.
    const parms = opt.find((o) => o.value.length >= 20 && o.type === 2) ?? opt.find((o) => o.value.length >= 20)!;
    return [read.string(x.get(TCA_ACT.KIND)!, 'kind', 16), parms.value.readUInt32LE(0)];
  });
}

describe('replies: port id (C1) and ACKs (C2), as netlink_rcv_skb sends them', () => {
  it('every reply to a request carries its nlmsg_pid: ACK, error, dump parts, NLMSG_DONE', async () => {
    const ok = await add('dev vf0 ingress prio 1 handle 1 protocol ip flower action drop');
    const bad = await add('dev vf0 ingress prio 1 handle 1 protocol ip flower action drop');
    const d = await dump();
    for (const m of [...ok, ...bad, ...d]) expect(m.pid).toBe(PID);
    expect(errOf(bad).errno).toBe(Errno.EEXIST);
    expect(d.at(-1)!.type).toBe(NlmsgType.DONE);
    expect(await del({ prio: 1 })).toHaveLength(1);
  });

  it('a change without NLM_F_ACK gets no answer; with it, one ACK', async () => {
    expect(await add('dev vf0 ingress prio 2 protocol ip flower action pass', NlmF.REQUEST | NlmF.CREATE)).toEqual([]);
    expect(errOf(await del({ prio: 2 })).errno).toBe(0);
  });

  it('devlink: family, device and eswitch gets are answered, then ACKed; a device dump ends with NLMSG_DONE only', async () => {
    const kinds = (r: NlMessage[]) => r.map((m) => (m.type === NlmsgType.ERROR ? `ack${parseError(m).errno}` : m.type === NlmsgType.DONE ? 'done' : 'reply'));
    const fam = await one(encodeFamilyRequest({ seq: ++seq, pid: PID }), at.genl);
    expect(kinds(fam)).toEqual(['reply', 'ack0']);
    const get = await one(encodeDevGetRequest({ seq: ++seq, pid: PID }, { bus: 'pci', dev: '0000:03:00.0' }), at.genl);
    expect(kinds(get)).toEqual(['reply', 'ack0']);
    const esw = await one(encodeEswitchRequest({ seq: ++seq, pid: PID }, { cmd: 'eswitch-get', bus: 'pci', dev: '0000:03:00.0' }), at.genl);
    expect(kinds(esw)).toEqual(['reply', 'ack0']);
    const all = await one(encodeDevGetRequest({ seq: ++seq, pid: PID }), at.genl);
    expect(kinds(all)).toEqual(['reply', 'done']);
    for (const m of [...fam, ...get, ...esw, ...all]) expect(m.pid).toBe(PID);
  });

  it('a filter add with NLM_F_ECHO (what OVS\'s tc_replace_flower sends): the new filter, with the handle it got, then the ACK', async () => {
    const ECHO_ADD = NlmF.REQUEST | NlmF.ACK | NlmF.CREATE | NlmF.ECHO;
    const r = await add('dev vf1 ingress prio 7 protocol ip flower dst_ip 10.0.0.7 action drop', ECHO_ADD);
    expect(r.map((m) => m.type)).toEqual([Rtm.NEWTFILTER, NlmsgType.ERROR]);
    expect(errOf(r.slice(1)).errno).toBe(0);
    const [echo] = r;
    // tfilter_notify stamps it with the request's own flags, seq and port id (tcf_fill_node).
    expect({ flags: echo!.flags, seq: echo!.seq, pid: echo!.pid }).toEqual({ flags: ECHO_ADD, seq, pid: PID });
    // OVS reads prio from tcm_info's major and the handle from tcm_handle: the kernel gave handle 1.
    expect({ prio: echo!.payload.readUInt32LE(16) >>> 16, handle: echo!.payload.readUInt32LE(8) }).toEqual({ prio: 7, handle: 1 });
    // The same filter a get answers (tc_get_tfilter fills it with the same tfilter_notify).
    const got = await one(encodeFilterSelect('get', sel({ dev: 'vf1', prio: 7, protocol: 0x0800, handle: 1, kind: 'flower' }), { flags: ECHO_ADD, seq: ++seq, pid: PID }));
    const a = decodeFilterDump(echo!), b = decodeFilterDump(got[0]!);
    expect(a.ok && b.ok).toBe(true);
    if (a.ok && b.ok) {
      expect(a.value.rule).toEqual(b.value.rule);
      // The same counters too: in_hw, and the hardware counters an in_hw filter carries (tc -s prints "Sent hardware").
      const untimed = (s: typeof a.value.stats) => ({ ...s, installedMs: 0, lastUsedMs: 0 });
      expect(untimed(a.value.stats)).toEqual(untimed(b.value.stats));
      expect(a.value.stats).toMatchObject({ inHw: true, inHwCount: 1, packets: 0, bytes: 0 });
    }
    // A refused add gets no echo, only its error.
    const dup = await add('dev vf1 ingress prio 7 handle 1 protocol ip flower dst_ip 10.0.0.7 action drop', ECHO_ADD | NlmF.EXCL);
    expect(dup.map((m) => m.type)).toEqual([NlmsgType.ERROR]);
    expect(errOf(await del({ dev: 'vf1', prio: 7 })).errno).toBe(0);
  });

  it('link get with NLM_F_ACK: RTM_NEWLINK then the ACK; without it, the reply alone', async () => {
    const withAck = await one(encodeGetLinkRequest({ seq: ++seq, pid: PID, flags: NlmF.REQUEST | NlmF.ACK }, 1));
    expect(withAck.map((m) => m.type)).toEqual([Rtm.NEWLINK, NlmsgType.ERROR]);
    expect(withAck.every((m) => m.pid === PID)).toBe(true);
    expect((await one(encodeGetLinkRequest({ seq: ++seq, pid: PID }, 1))).map((m) => m.type)).toEqual([Rtm.NEWLINK]);
  });
});

describe('links (C3): every netdev of the channel answers RTM_GETLINK', () => {
  const byName = (name: string) =>
    buildMessage({ type: Rtm.GETLINK, flags: NlmF.REQUEST, seq: ++seq, pid: PID }, Buffer.concat([Buffer.alloc(16), new AttrWriter().string(IFLA.IFNAME, name).toBuffer()]));
  const ifindexOf = (m: NlMessage) => m.payload.readInt32LE(4);

  it('by ifindex and by name, the representors as well as the PF; a dump lists them all', async () => {
    expect(ifindexOf((await one(encodeGetLinkRequest({ seq: ++seq, pid: PID }, 3)))[0]!)).toBe(3);
    expect(ifindexOf((await one(byName('vf0')))[0]!)).toBe(2);
    expect(ifindexOf((await one(byName('pf')))[0]!)).toBe(1);
    const all = await one(encodeGetLinkRequest({ seq: ++seq, pid: PID }, 0));
    expect(all.filter((m) => m.type === Rtm.NEWLINK).map(ifindexOf)).toEqual([1, 2, 3]);
    expect(all.at(-1)!.type).toBe(NlmsgType.DONE);
  });

  it('a netdev it lacks is a bare ENODEV, as rtnl_getlink answers', async () => {
    const e = errOf(await one(byName('vf7')));
    expect(e.errno).toBe(Errno.ENODEV);
    expect(errOf(await one(encodeGetLinkRequest({ seq: ++seq, pid: PID }, 9))).errno).toBe(Errno.ENODEV);
  });
});

describe('filters: tc_new_tfilter / tc_del_tfilter / tc_get_tfilter', () => {
  it('replace (NLM_F_CREATE without EXCL) changes an existing filter; change of a missing one is ENOENT', async () => {
    expect(errOf(await add('dev vf0 ingress prio 5 handle 3 protocol ip flower ip_proto udp action drop')).errno).toBe(0);
    expect(errOf(await add('dev vf0 ingress prio 5 handle 3 protocol ip flower ip_proto tcp action drop', REPLACE)).errno).toBe(0);
    const d = (await dump({ prio: 5 })).filter((m) => m.type === Rtm.NEWTFILTER && !entry(m).bare);
    expect(d).toHaveLength(1);
    const got = decodeFilterDump(d[0]!);
    expect(got.ok && got.value.rule.match.ipProto).toBe(6);
    expect(errOf(await add('dev vf0 ingress prio 5 handle 3 protocol ip flower ip_proto udp action drop', CHANGE)).errno).toBe(0);
    const missing = errOf(await add('dev vf0 ingress prio 5 handle 4 protocol ip flower action drop', CHANGE));
    expect([missing.errno, missing.message]).toEqual([Errno.ENOENT, 'Need both RTM_NEWTFILTER and NLM_F_CREATE to create a new filter']);
    const exists = errOf(await add('dev vf0 ingress prio 5 handle 3 protocol ip flower action drop'));
    expect([exists.errno, exists.message]).toEqual([Errno.EEXIST, 'Filter already exists']);
    const proto = errOf(await add('dev vf0 ingress prio 5 handle 9 protocol ipv6 flower action drop', REPLACE));
    expect([proto.errno, proto.message]).toEqual([Errno.EINVAL, 'Filter with specified priority/protocol not found']);
  });

  it('get of one filter answers it with the request flags; a missing handle is ENOENT "Specified filter handle not found"', async () => {
    const get = await one(encodeFilterSelect('get', sel({ prio: 5, protocol: 0x0800, handle: 3, kind: 'flower' }), { flags: NlmF.REQUEST, seq: ++seq, pid: PID }));
    expect(get).toHaveLength(1);
    expect([get[0]!.type, get[0]!.flags, entry(get[0]!).handle]).toEqual([Rtm.NEWTFILTER, NlmF.REQUEST, 3]);
    const miss = errOf(await one(encodeFilterSelect('get', sel({ prio: 5, protocol: 0x0800, handle: 99, kind: 'flower' }), { flags: NlmF.REQUEST, seq: ++seq, pid: PID })));
    expect([miss.errno, miss.message]).toEqual([Errno.ENOENT, 'Specified filter handle not found']);
    const noPrio = errOf(await one(encodeFilterSelect('get', sel({ prio: 77, protocol: 0x0800, handle: 1 }), { flags: NlmF.REQUEST, seq: ++seq, pid: PID })));
    expect([noPrio.errno, noPrio.message]).toEqual([Errno.ENOENT, 'Filter with specified priority/protocol not found']);
  });

  it('delete: a missing handle, a missing prio, a missing chain, and a flush with a handle each get the kernel text', async () => {
    const h = errOf(await del({ prio: 5, handle: 99 }));
    expect([h.errno, h.message]).toEqual([Errno.ENOENT, 'Specified filter handle not found']);
    const p = errOf(await del({ prio: 66 }));
    expect([p.errno, p.message]).toEqual([Errno.ENOENT, 'Filter with specified priority/protocol not found']);
    const c = errOf(await del({ prio: 5, chain: 42 }));
    expect([c.errno, c.message]).toEqual([Errno.ENOENT, 'Cannot find specified filter chain']);
    const f = errOf(await del({ handle: 3 }));
    expect([f.errno, f.message]).toEqual([Errno.ENOENT, 'Cannot flush filters with protocol, handle or kind set']);
    // A flush of a chain that does not exist succeeds: nothing to do.
    expect(errOf(await del({ chain: 42 })).errno).toBe(0);
    expect(errOf(await del({ prio: 5, handle: 3 })).errno).toBe(0);
  });

  it('a filter without prio gets one below the lowest tcf_proto above 0x8000, or 0xC000 (tcf_auto_prio)', async () => {
    expect(errOf(await add('dev vf1 ingress prio 3 protocol ip flower action drop')).errno).toBe(0);
    expect(errOf(await add('dev vf1 ingress protocol ip flower action drop')).errno).toBe(0);
    expect(errOf(await add('dev vf1 ingress protocol ip flower action drop')).errno).toBe(0);
    expect(entries(await dump({ dev: 'vf1' })).filter((e) => e.bare).map((e) => e.prio)).toEqual([3, 0xbfff, 0xc000]);
    expect(errOf(await del({ dev: 'vf1' })).errno).toBe(0);
  });
});

describe('action cookies (TCA_ACT_COOKIE): what OVS stamps its flows with', () => {
  /** Per action of a filter message: the attribute types in order, and the cookie's bytes. */
  function actionAttrs(m: NlMessage): { types: number[]; cookie?: string }[] {
    const opts = attrMap(parseAttrs(m.payload.subarray(20), 'tcmsg')).get(TCA.OPTIONS)!;
    const act = attrMap(parseAttrs(opts.value, 'flower')).get(F.ACT)!;
    return parseAttrs(act.value, 'acts').map((a) => {
      const x = parseAttrs(a.value, 'act');
      const c = x.find((y) => y.type === TCA_ACT.COOKIE);
      return { types: x.map((y) => y.type), ...(c ? { cookie: c.value.toString('hex') } : {}) };
    });
  }

  it('are kept and dumped back right after the action\'s stats, as tcf_action_dump_terse puts them', async () => {
    const ufid = '8f3a0c1d2e4b5a6978695a4b3c2d1e0f';
    expect(errOf(await add(`dev vf1 ingress prio 33 handle 1 protocol ip flower ip_proto udp action mirred egress redirect dev vf0 cookie ${ufid}`)).errno).toBe(0);
    const shown = (await dump({ dev: 'vf1', prio: 33 })).filter((m) => m.type === Rtm.NEWTFILTER && entry(m).handle === 1);
    expect(shown).toHaveLength(1);
    const [a] = actionAttrs(shown[0]!);
    expect(a!.cookie).toBe(ufid);
    expect(a!.types.slice(0, 3)).toEqual([TCA_ACT.KIND, TCA_ACT.STATS, TCA_ACT.COOKIE]);
    expect(errOf(await del({ dev: 'vf1', prio: 33 })).errno).toBe(0);
  });

  it('longer than 16 bytes: ERANGE, "Attribute failed policy validation" (tcf_action_policy), and nothing added', async () => {
    const r = rule('dev vf1 ingress prio 34 protocol ip flower action drop');
    r.actions[0] = { ...r.actions[0]!, cookie: '00'.repeat(17) };
    const e = errOf(await one(encodeFilterRequest(r, { flags: ADD, seq: ++seq, pid: PID })));
    expect({ errno: e.errno, message: e.message }).toEqual({ errno: Errno.ERANGE, message: 'Attribute failed policy validation' });
    expect(entries(await dump({ dev: 'vf1', prio: 34 }))).toEqual([]);
  });
});

describe('dumps as tc_dump_tfilter walks them', () => {
  it('chains in creation order, then prio, then handle; each tcf_proto opens with its bare entry', async () => {
    const lines = [
      'dev vf0 ingress chain 7 prio 2 handle 2 protocol ip flower dst_ip 10.0.0.2 action drop',
      'dev vf0 ingress chain 0 prio 9 handle 5 protocol ip flower action goto chain 7',
      'dev vf0 ingress chain 0 prio 1 handle 8 protocol ip flower dst_ip 10.0.0.8 action drop',
      'dev vf0 ingress chain 7 prio 2 handle 1 protocol ip flower dst_ip 10.0.0.1 action drop',
      'dev vf0 ingress chain 0 prio 1 handle 3 protocol ip flower dst_ip 10.0.0.3 action drop',
    ];
    for (const l of lines) expect(errOf(await add(l)).errno).toBe(0);
    const got = entries(await dump()).map((e) => (e.bare ? `${e.chain}/${e.prio}` : `${e.chain}/${e.prio}/${e.handle}`));
    expect(got).toEqual(['7/2', '7/2/1', '7/2/2', '0/1', '0/1/3', '0/1/8', '0/9', '0/9/5']);
    // The request's prio and chain narrow the walk; its handle does not.
    expect(entries(await dump({ prio: 1, handle: 3 })).map((e) => e.handle)).toEqual([0, 3, 8]);
    expect(entries(await dump({ chain: 7 })).map((e) => e.handle)).toEqual([0, 1, 2]);
    // parent 0 is the root qdisc: no filter block there.
    const root = Buffer.from(encodeFilterSelect('get', sel({}), { flags: NlmF.REQUEST | NlmF.DUMP, seq: ++seq, pid: PID }));
    root.writeUInt32LE(0, 16 + 12);
    expect((await one(root)).map((m) => m.type)).toEqual([NlmsgType.DONE]);
  });

  it('actions carry kernel-style indexes: the lowest free per kind from 1, freed with their filter, new ones on replace', async () => {
    const idx = async (prio: number, chain = 0) => {
      const d = (await dump({ prio, chain })).filter((m) => m.type === Rtm.NEWTFILTER && !entry(m).bare);
      return d.map(actionIndexes);
    };
    // Earlier tests freed every index; this test's adds took gact 1 (chain 7 h2), 2 (the goto), 3 (h8), 4 (chain 7 h1), 5 (h3).
    expect(await idx(2, 7)).toEqual([[['gact', 4]], [['gact', 1]]]);
    expect(await idx(1)).toEqual([[['gact', 5]], [['gact', 3]]]);
    expect(errOf(await del({ prio: 1, handle: 3 })).errno).toBe(0);
    expect(errOf(await add('dev vf0 ingress chain 0 prio 1 handle 3 protocol ip flower dst_ip 10.0.0.3 action pass action mirred egress redirect dev vf1')).errno).toBe(0);
    expect((await idx(1))[0]).toEqual([
      ['gact', 5],
      ['mirred', 1],
    ]);
    // A replace allocates the new actions while the old ones are held: the index moves.
    expect(errOf(await add('dev vf0 ingress chain 0 prio 1 handle 3 protocol ip flower dst_ip 10.0.0.3 action pass', REPLACE)).errno).toBe(0);
    expect((await idx(1))[0]).toEqual([['gact', 6]]);
    expect(errOf(await add('dev vf0 ingress chain 0 prio 1 handle 4 protocol ip flower dst_ip 10.0.0.4 action drop')).errno).toBe(0);
    expect((await idx(1))[1]).toEqual([['gact', 5]]);
  });
});

describe('chains: tc_ctl_chain and tc_dump_chain', () => {
  const shown = async (dev = 'vf1') => (await chainReq('get', undefined, NlmF.REQUEST | NlmF.DUMP, dev)).filter((m) => m.type === Rtm.NEWCHAIN).map((m) => entry(m).chain);

  it('add, add again (EEXIST), get (RTM_GETCHAIN with the request flags), show, del, del again (EINVAL)', async () => {
    expect(errOf(await chainReq('new', 11)).errno).toBe(0);
    const again = errOf(await chainReq('new', 11));
    expect([again.errno, again.message]).toEqual([Errno.EEXIST, 'Filter chain already exists']);
    const get = await chainReq('get', 11, NlmF.REQUEST);
    expect(get.map((m) => [m.type, m.flags, m.pid, entry(m).chain])).toEqual([[Rtm.GETCHAIN, NlmF.REQUEST, PID, 11]]);
    expect(await shown()).toEqual([11]);
    expect(errOf(await chainReq('del', 11)).errno).toBe(0);
    // cls_api.c tc_ctl_chain answers a chain it cannot find with EINVAL.
    const gone = errOf(await chainReq('del', 11));
    expect([gone.errno, gone.message]).toEqual([Errno.EINVAL, 'Cannot find specified filter chain']);
    expect(errOf(await chainReq('get', 11, NlmF.REQUEST)).errno).toBe(Errno.EINVAL);
    expect(errOf(await chainReq('new', 12, NlmF.REQUEST | NlmF.ACK)).errno).toBe(Errno.ENOENT);
  });

  it('chains made by filters are shown and taken by add (EEXIST); chains held only by goto are not shown', async () => {
    expect(errOf(await add('dev vf1 ingress chain 3 prio 1 protocol ip flower action goto chain 4')).errno).toBe(0);
    expect(await shown()).toEqual([3]);
    expect(errOf(await chainReq('new', 3)).errno).toBe(Errno.EEXIST);
    expect(errOf(await chainReq('get', 4, NlmF.REQUEST)).errno).toBe(Errno.EINVAL);
    // An explicit add of a goto-held chain succeeds and keeps its place (created when the goto took it).
    expect(errOf(await chainReq('new', 4)).errno).toBe(0);
    expect(errOf(await chainReq('new', 2)).errno).toBe(0);
    expect(await shown()).toEqual([3, 4, 2]);
    // Deleting a chain deletes its filters; the goto's chain stays because it was added explicitly.
    expect(errOf(await chainReq('del', 3)).errno).toBe(0);
    expect(await shown()).toEqual([4, 2]);
    expect(entries(await dump({ dev: 'vf1', chain: 3 }))).toEqual([]);
  });

  it('chains and action indexes survive a restart (journal)', async () => {
    const before = { chains: await shown(), filters: entries(await dump()) };
    const idx = (await dump()).filter((m) => m.type === Rtm.NEWTFILTER && !entry(m).bare).map(actionIndexes);
    vm.close();
    const journal = new Journal(join(dir, 'j'));
    const [rec] = journal.loadAll();
    await startVm(1, rec!, journal);
    expect(await shown()).toEqual(before.chains);
    expect(entries(await dump())).toEqual(before.filters);
    expect((await dump()).filter((m) => m.type === Rtm.NEWTFILTER && !entry(m).bare).map(actionIndexes)).toEqual(idx);
  });
});

describe('skip_hw (C5)', () => {
  it('a skip_hw filter is reported not_in_hw', async () => {
    expect(errOf(await add('dev vf1 ingress prio 20 handle 1 protocol ip flower skip_hw action drop')).errno).toBe(0);
    const [m] = (await dump({ dev: 'vf1', prio: 20 })).filter((x) => x.type === Rtm.NEWTFILTER && !entry(x).bare);
    const opts = attrMap(parseAttrs(attrMap(parseAttrs(m!.payload.subarray(20), 'tcmsg')).get(TCA.OPTIONS)!.value, 'flower'));
    const flags = read.u32(opts.get(F.FLAGS)!, 'flags');
    expect(flags & (CLS_FLAGS.IN_HW | CLS_FLAGS.NOT_IN_HW)).toBe(CLS_FLAGS.NOT_IN_HW);
  });
});

describe('a loop of chains (translator/loops.ts)', () => {
  const inHw = async (prio: number, chain: number) => {
    const [m] = (await dump({ dev: 'vf0', prio, chain })).filter((x) => x.type === Rtm.NEWTFILTER && !entry(x).bare);
    const d = decodeFilterDump(m!);
    if (!d.ok) throw new Error(d.error.message);
    return d.value.stats.inHw;
  };
  it('gotos on a loop are not_in_hw while it lasts; deleting the rule that closes it brings the other back in_hw', async () => {
    expect(errOf(await add('dev vf0 ingress chain 40 prio 1 handle 1 protocol ip flower action goto chain 41')).errno).toBe(0);
    expect(await inHw(1, 40)).toBe(true);
    expect(errOf(await add('dev vf0 ingress chain 41 prio 1 handle 1 protocol ip flower dst_ip 10.0.0.1 action goto chain 40')).errno).toBe(0);
    expect(errOf(await add('dev vf0 ingress chain 41 prio 1 handle 2 protocol ip flower dst_ip 10.0.0.2 action drop')).errno).toBe(0);
    expect([await inHw(1, 40), await inHw(1, 41)]).toEqual([false, false]);
    expect(errOf(await del({ dev: 'vf0', chain: 41, prio: 1, protocol: 0x0800, handle: 1, kind: 'flower' })).errno).toBe(0);
    expect([await inHw(1, 40), await inHw(1, 41)]).toEqual([true, true]);
  });
});
