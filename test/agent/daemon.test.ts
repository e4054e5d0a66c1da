// vpfd against a real Open vSwitch, driven through its guest channel with the
// bytes a real iproute2 sends: acks, refusals with errno and extack, dumps with
// counters, restarts that cost no flow mods, and a hostile VM that cannot hurt another.
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type VpfdConfig } from '../../agent/config.js';
import { Vpfd } from '../../agent/daemon.js';
import { talk } from '../../agent/ctl/channel.js';
import { Errno } from '../../rules/errors.js';
import { NlmsgType, parseError, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { decodeFilterDump, encodeChainRequest, encodeFilterRequest, encodeFilterSelect } from '../../rules/netlink/tc.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { parseDumpFlows } from '../../ovs/ctl/ofctl.js';
import { captureBatch } from '../helpers/nlcapture.js';
import { startOvs, type PrivateOvs } from '../harness/ovs.js';
import { connect } from 'node:net';
import { NlmF, parseMessages } from '../../rules/netlink/nlmsg.js';
import { adminRequest } from '../../agent/admin/client.js';
import { encodeVfSetRequest } from '../../rules/netlink/link.js';
import { encodeEswitchRequest } from '../../rules/netlink/devlink.js';

let ovs: PrivateOvs;
let state: string;
let config: VpfdConfig;
let d: Vpfd;

const errnoOf = (replies: NlMessage[]) => {
  const last = replies.at(-1)!;
  expect(last.type).toBe(NlmsgType.ERROR);
  return parseError(last);
};
const rule = (line: string) => {
  const r = parseFilter(splitArgs(line));
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};
const send = (vm: string, msg: Buffer) => talk(d.channelPath(vm), msg);
const flows = async (vm: string) => parseDumpFlows(await ovs.ofctl('dump-flows', `vpf-${vm}`));

// Each test makes its own VMs and afterEach deletes them, so any test runs alone (`-t`) or in any order.
let vmSeq = 0;
const made: string[] = [];
const newVm = async () => {
  const name = `v${++vmSeq}`;
  await d.addVm({ name, vfs: 2 });
  made.push(name);
  return name;
};
/** Adds rules (tc syntax) that must be accepted. */
const seed = async (vm: string, ...lines: string[]) => {
  for (const l of lines) expect(errnoOf(await send(vm, encodeFilterRequest(rule(l)))).errno).toBe(0);
};

beforeAll(async () => {
  ovs = await startOvs();
  state = mkdtempSync(join(tmpdir(), 'vpf-state-'));
  config = { ...DEFAULT_CONFIG, hwOffload: true, tcPolicy: 'none', stateDir: state, ovsdb: `unix:${ovs.dbSock}`, ovsRundir: ovs.rundir, datapathType: 'netdev', reconcileIntervalMs: 60_000, quotas: { rulesPerVm: 50, flowsPerVm: 1000, msgsPerSec: 100_000 } };
  d = await Vpfd.start(config, pino({ level: 'silent' }));
}, 60_000);

afterEach(async () => {
  for (const name of made.splice(0)) await d.delVm(name);
});

afterAll(async () => {
  await d?.stop();
  await ovs?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe('vpfd guest channel', () => {
  it('sets the configured hw-offload and tc-policy in Open_vSwitch other_config', async () => {
    expect(await ovs.vsctl('get', 'Open_vSwitch', '.', 'other_config:hw-offload')).toBe('"true"');
    expect(await ovs.vsctl('get', 'Open_vSwitch', '.', 'other_config:tc-policy')).toBe('none');
  });

  it('acknowledges the bytes a real iproute2 sends, once the flows are in OVS', async () => {
    const a = await newVm();
    // In the capture namespace vf0 and vf1 are ifindex 2 and 3: the channel's numbering, so the bytes go as they are.
    const cap = await captureBatch([['tc', 'filter', 'add', 'dev', 'vf0', 'ingress', 'prio', '1', 'protocol', 'ip', 'flower', 'ip_proto', 'udp', 'dst_port', '53', 'action', 'mirred', 'egress', 'redirect', 'dev', 'vf1']], ['vf0', 'vf1']);
    expect(cap.ifindex).toEqual({ vf0: 2, vf1: 3 });
    const msg = cap.captures[0]!.messages.find((m) => m.readUInt16LE(4) === 44)!;
    const e = errnoOf(await send(a, msg));
    expect(e.errno).toBe(0);
    expect(e.request.seq).toBe(msg.readUInt32LE(8));
    expect((await flows(a)).some((f) => f.match.includes('tp_dst=53') && f.actions === 'output:101')).toBe(true);
  });

  it('answers with the exact bytes the kernel sends for an ACK (NLM_F_CAPPED, request header echoed)', async () => {
    const a = await newVm();
    const req = encodeFilterRequest(rule('dev uplink ingress prio 7 protocol ip flower action drop'), { seq: 0x01020304, pid: 0 });
    const [ack] = await send(a, req);
    // nlmsghdr{len 36, NLMSG_ERROR, NLM_F_CAPPED, seq, pid 0} + error 0 + the request's nlmsghdr (netlink_ack()).
    const want = Buffer.alloc(36);
    want.writeUInt32LE(36, 0);
    want.writeUInt16LE(2, 4);
    want.writeUInt16LE(0x100, 6);
    want.writeUInt32LE(0x01020304, 8);
    req.copy(want, 20, 0, 16);
    expect(Buffer.from(ack!.payload.buffer, ack!.payload.byteOffset - 16, 36).toString('hex')).toBe(want.toString('hex'));
  });

  it('refuses what cannot be offloaded with skip_sw, with EOPNOTSUPP and the reason', async () => {
    const a = await newVm();
    const e = errnoOf(await send(a, encodeFilterRequest(rule('dev vf0 ingress prio 2 protocol 802.1Q flower skip_sw vlan_id 5 action drop'))));
    expect(e.errno).toBe(Errno.EOPNOTSUPP);
    expect(e.message).toMatch(/TPID/);
  });

  it('gives each VM its own host conntrack zone for a 16-bit guest zone, keeps it across a restart and frees it with the VM', async () => {
    const zoneOf = async (vm: string) => {
      const ct = (await flows(vm)).map((f) => /ct\(.*?zone=(\d+)/.exec(f.actions)?.[1]).find((z) => z !== undefined);
      return Number(ct);
    };
    // ovn-kubernetes' zone: two guests naming it must not share connections.
    const line = 'dev vf0 ingress prio 2 protocol ip flower skip_sw action ct zone 64000 commit pipe action drop';
    const a = await newVm();
    const b = await newVm();
    await seed(a, line);
    await seed(b, line);
    const [za, zb] = [await zoneOf(a), await zoneOf(b)];
    expect(za).toBeGreaterThan(0);
    expect(zb).toBeGreaterThan(0);
    expect(za).not.toBe(zb);
    await d.stop();
    d = await Vpfd.start(config, pino({ level: 'silent' }));
    expect(await zoneOf(a)).toBe(za);
    expect(await zoneOf(b)).toBe(zb);
    // a's zone goes back to the pool with a; the next VM to name a zone gets the lowest free one, a's.
    made.splice(made.indexOf(a), 1);
    await d.delVm(a);
    const c = await newVm();
    await seed(c, 'dev vf0 ingress prio 2 protocol ip flower skip_sw action ct zone 7 pipe action drop');
    expect(await zoneOf(c)).toBe(Math.min(za, zb));
  });

  it('answers EEXIST for a second add of the same handle, ENOENT for deleting nothing, ENODEV for a port it lacks', async () => {
    const a = await newVm();
    const r = rule('dev vf1 ingress prio 3 handle 9 protocol ip flower action drop');
    expect(errnoOf(await send(a, encodeFilterRequest(r))).errno).toBe(0);
    expect(errnoOf(await send(a, encodeFilterRequest(r))).errno).toBe(Errno.EEXIST);
    const sel = { dev: 'vf1', direction: 'ingress' as const, chain: undefined, prio: 4, protocol: 0, handle: 0, kind: undefined };
    expect(errnoOf(await send(a, encodeFilterSelect('del', sel))).errno).toBe(Errno.ENOENT);
    // The kernel's device lookup by ifindex fails bare: no extack (__tcf_qdisc_find).
    const noDev = errnoOf(await send(a, encodeFilterRequest(rule('dev vf5 ingress prio 1 protocol ip flower action drop'))));
    expect([noDev.errno, noDev.message]).toEqual([Errno.ENODEV, undefined]);
  });

  it('answers a real tc replace, get and chain add as the kernel does, addressed to the requester port id', async () => {
    const a = await newVm();
    const pid = 0x4242;
    const r = rule('dev vf0 ingress prio 11 handle 2 protocol ip flower ip_proto udp action drop');
    // `tc filter replace` sends NLM_F_CREATE without NLM_F_EXCL: an existing filter is changed, not EEXIST.
    for (let i = 0; i < 2; i++) {
      const [ack] = await send(a, encodeFilterRequest(r, { flags: NlmF.REQUEST | NlmF.ACK | NlmF.CREATE, pid }));
      expect([parseError(ack!).errno, ack!.pid]).toEqual([0, pid]);
    }
    const get = await send(a, encodeFilterSelect('get', { dev: 'vf0', direction: 'ingress', chain: undefined, prio: 11, protocol: 0x800, handle: 99, kind: 'flower' }, { flags: NlmF.REQUEST | NlmF.ACK, pid }));
    const miss = errnoOf(get);
    expect([miss.errno, miss.message, get[0]!.pid]).toEqual([Errno.ENOENT, 'Specified filter handle not found', pid]);
    expect(errnoOf(await send(a, encodeChainRequest('new', 'vf0', 'ingress', 0, { pid }))).errno).toBe(Errno.EEXIST);
    expect(errnoOf(await send(a, encodeFilterSelect('del', { dev: 'vf0', direction: 'ingress', chain: undefined, prio: 11, protocol: 0, handle: 0, kind: undefined }))).errno).toBe(0);
  });

  it('reports the datapath flows traffic created, and that none is in hardware on the userspace datapath', async () => {
    await newVm(); // ovs-vswitchd has a datapath once a bridge exists
    const r = await d.offload();
    expect(r.offloaded).toBe(0);
    expect(r.datapathFlows).toBe(r.flows.length);
  });

  it('dumps filters with in_hw and counters from OVS', async () => {
    const a = await newVm();
    await seed(a, 'dev vf1 ingress prio 3 handle 9 protocol ip flower action drop');
    const replies = await send(a, encodeFilterSelect('get', { dev: 'vf1', direction: 'ingress', chain: undefined, prio: 0, protocol: 0, handle: 0, kind: undefined }, { flags: 0x301 }));
    expect(replies.at(-1)!.type).toBe(NlmsgType.DONE);
    // tcf_chain_dump opens each tcf_proto with a bare entry (handle 0, no TCA_OPTIONS), then its filters.
    expect(replies[0]!.payload.readUInt32LE(8)).toBe(0);
    const dumped = replies.slice(1, -1).map((m) => decodeFilterDump(m));
    expect(dumped).toHaveLength(1);
    expect(dumped[0]!.ok && dumped[0]!.value.stats.inHw).toBe(true);
    expect(dumped[0]!.ok && dumped[0]!.value.rule.handle).toBe(9);
  });

  it('gives a filter without a handle the lowest free one, as cls_flower does (idr_alloc_u32 from 1)', async () => {
    const b = await newVm();
    // Each its own key: the same key again is EEXIST (cls_flower.c fl_ht_insert_unique).
    let port = 1000;
    const add = () => send(b, encodeFilterRequest(rule(`dev vf1 ingress prio 9 protocol ip flower ip_proto udp dst_port ${port++} action drop`)));
    for (let i = 0; i < 3; i++) expect(errnoOf(await add()).errno).toBe(0);
    const handles = async () => (await d.vmRules(b)).filter((v) => v.rule.prio === 9).map((v) => v.rule.handle).sort();
    expect(await handles()).toEqual([1, 2, 3]);
    const sel = { dev: 'vf1', direction: 'ingress' as const, chain: undefined, prio: 9, protocol: 0, handle: 2, kind: undefined };
    expect(errnoOf(await send(b, encodeFilterSelect('del', sel))).errno).toBe(0);
    expect(errnoOf(await add()).errno).toBe(0);
    expect(errnoOf(await add()).errno).toBe(0);
    expect(await handles()).toEqual([1, 2, 3, 4]);
    expect(errnoOf(await send(b, encodeFilterSelect('del', { ...sel, handle: 0 }))).errno).toBe(0);
  });

  it('/metrics reports rules, flows, flow mods by path, install latency and refusals by errno, one family each', async () => {
    const a = await newVm();
    await seed(a, 'dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port 53 action mirred egress redirect dev vf1');
    expect(errnoOf(await send(a, encodeFilterRequest(rule('dev vf0 ingress prio 2 protocol 802.1Q flower skip_sw vlan_id 5 action drop')))).errno).toBe(Errno.EOPNOTSUPP);
    const text = await adminRequest<string>(join(state, 'vpfd.sock'), 'GET', '/metrics');
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"|]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value(`vpf_rules{vm="${a}"}`)).toBeGreaterThan(0);
    expect(value(`vpf_flows{vm="${a}"}`)).toBe((await flows(a)).length);
    expect(value(`vpf_flow_mods_total{path="native",vm="${a}"}`)).toBeGreaterThan(0);
    expect(value(`vpf_flow_mods_total{path="ovs-ofctl",vm="${a}"}`)).toBe(0);
    expect(value(`vpf_install_seconds_count{vm="${a}"}`)).toBeGreaterThan(0);
    expect(value(`vpf_channel_errors_total{errno="EOPNOTSUPP",vm="${a}"}`)).toBeGreaterThan(0);
    // The text format wants each family's TYPE once.
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
  });

  it('a restart of vpfd costs zero flow mods: counters of existing flows survive', async () => {
    const a = await newVm();
    await seed(a, 'dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port 53 action mirred egress redirect dev vf1', 'dev vf1 ingress prio 3 handle 9 protocol ip flower action drop');
    const before = await flows(a);
    await d.stop();
    d = await Vpfd.start(config, pino({ level: 'silent' }));
    const after = await flows(a);
    expect(after.map((f) => f.cookie).sort()).toEqual(before.map((f) => f.cookie).sort());
    // A re-added flow would have a fresh duration; unchanged flows keep theirs.
    const dur = new Map(before.map((f) => [f.cookie, f.durationSec]));
    for (const f of after) expect(f.durationSec).toBeGreaterThanOrEqual(dur.get(f.cookie)!);
  });

  it('a restarted ovs-vswitchd gets every flow back within 2 s', async () => {
    const a = await newVm();
    await seed(a, 'dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port 53 action mirred egress redirect dev vf1', 'dev vf1 ingress prio 3 handle 9 protocol ip flower action drop');
    const want = (await flows(a)).map((f) => f.cookie).sort();
    await ovs.restartVswitchd();
    const t0 = Date.now();
    let got: bigint[] = [];
    while (Date.now() - t0 < 2000) {
      got = (await flows(a).catch(() => [])).map((f) => f.cookie).sort();
      if (got.length === want.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(got).toEqual(want);
  });

  it('after random adds, replaces and deletes the bridge holds exactly the flows a whole translation gives', async () => {
    const inc = await newVm();
    // Most of these changes take the per-group path (agent/desired.ts); the check is against translate() of everything.
    const ops = fc.sample(fc.tuple(fc.nat(5), fc.nat(3), fc.nat(30), fc.constantFrom('add', 'replace', 'del')), { numRuns: 150, seed: 5 });
    for (const [dev, prio, port, op] of ops) {
      const line = `dev vf${dev % 2} ingress prio ${1 + prio} handle ${1 + (port % 4)} protocol ip flower ip_proto ${port % 2 ? 'tcp' : 'udp'} ${port % 5 ? 'dst_port' : 'src_port'} ${port + 1} action ${port % 3 ? 'drop' : 'mirred egress redirect dev vf1'}`;
      if (op === 'del') await send(inc, encodeFilterSelect('del', { dev: `vf${dev % 2}`, direction: 'ingress', chain: undefined, prio: 1 + prio, protocol: 0, handle: 1 + (port % 4), kind: undefined }));
      else await send(inc, encodeFilterRequest(rule(line), { flags: op === 'replace' ? NlmF.REQUEST | NlmF.ACK | NlmF.CREATE | NlmF.REPLACE : undefined }));
    }
    expect((await d.vmRules(inc)).length).toBeGreaterThan(5);
    // A restart translates every rule from the journal and diffs against the bridge: not one flow may differ.
    const before = (await flows(inc)).map((f) => f.cookie).sort();
    await d.stop();
    d = await Vpfd.start(config, pino({ level: 'silent' }));
    expect((await flows(inc)).map((f) => f.cookie).sort()).toEqual(before);
  }, 120_000);

  it('a flood of 10k mutated messages on one VM is answered with errnos; the other VM keeps working', async () => {
    const [a, b] = [await newVm(), await newVm()];
    const good = encodeFilterRequest(rule('dev vf0 ingress prio 1 protocol ip flower ip_proto tcp dst_port 80 action drop'));
    const samples = fc.sample(fc.tuple(fc.nat(good.length - 17), fc.integer({ min: 0, max: 255 })), { numRuns: 10_000, seed: 7 });
    let answered = 0;
    const flood = (async () => {
      for (const [pos, v] of samples) {
        const m = Buffer.from(good);
        m[16 + pos] = v;
        const replies = await send(a, m);
        if (replies.at(-1)!.type === NlmsgType.ERROR) answered++;
      }
    })();
    const other = errnoOf(await send(b, encodeFilterRequest(rule('dev vf0 ingress prio 1 protocol ip flower action pass'))));
    expect(other.errno).toBe(0);
    await flood;
    expect(answered).toBe(samples.length);
    expect(d.listVms().map((v) => v.name).sort()).toEqual([a, b].sort());
    expect(d.listVms().find((v) => v.name === a)!.flows).toBe((await flows(a)).length);
  }, 120_000);

  it('mutated VF-setting and devlink messages are each answered; the other VM keeps working', async () => {
    const [a, b] = [await newVm(), await newVm()];
    // On one connection per channel, pipelined; every request gets exactly one first reply (ACK, error or answer).
    const answers = (path: string, msgs: Buffer[]) =>
      new Promise<NlMessage[]>((resolve, reject) => {
        const got: NlMessage[] = [];
        const seen = new Set<number>();
        let buf = Buffer.alloc(0);
        const s = connect(path, () => msgs.forEach((m) => s.write(m)));
        s.on('error', reject);
        s.on('data', (c) => {
          buf = Buffer.concat([buf, c]);
          while (buf.length >= 16 && buf.readUInt32LE(0) <= buf.length) {
            const m = parseMessages(buf.subarray(0, buf.readUInt32LE(0)))[0]!;
            buf = buf.subarray((buf.readUInt32LE(0) + 3) & ~3);
            if (seen.has(m.seq)) continue;
            seen.add(m.seq);
            got.push(m);
          }
          if (got.length === msgs.length) {
            s.end();
            resolve(got);
          }
        });
      });
    const mutate = (good: Buffer, n: number, seed: number) =>
      fc.sample(fc.tuple(fc.nat(good.length - 17), fc.integer({ min: 0, max: 255 })), { numRuns: n, seed }).map(([pos, v], i) => {
        const m = Buffer.from(good);
        m[16 + pos] = v;
        m.writeUInt32LE(i + 1, 8); // seq: one answer per request
        return m;
      });
    const setvf = encodeVfSetRequest({ seq: 1 }, 1, [{ vf: 0, mac: '02:00:00:00:00:01', vlan: { vlan: 100, qos: 3, proto: 0x88a8 }, rate: { min: 0, max: 100 }, spoofchk: true, trust: true, linkState: 1 }]);
    const eswitch = encodeEswitchRequest({ seq: 1 }, { cmd: 'eswitch-set', bus: 'pci', dev: '0000:01:00.0', mode: 'legacy' });
    const flood = Promise.all([
      answers(d.channelPath(a), mutate(setvf, 3000, 11)),
      answers(d.genlChannelPath(a), mutate(eswitch, 1000, 12)),
    ]);
    const other = errnoOf(await send(b, encodeFilterRequest(rule('dev vf0 ingress prio 2 protocol ip flower action pass'))));
    expect(other.errno).toBe(0);
    const [rt, genl] = await flood;
    expect(rt).toHaveLength(3000);
    expect(genl).toHaveLength(1000);
    // Refusals carry an errno and a reason; none is the daemon tripping over itself.
    const refusals = [...rt, ...genl].filter((m) => m.type === NlmsgType.ERROR).map(parseError).filter((e) => e.errno);
    expect(refusals.length).toBeGreaterThan(100);
    expect(refusals.every((e) => e.errno > 0 && e.message && !/internal error/.test(e.message))).toBe(true);
    expect(d.listVms().map((v) => v.name).sort()).toEqual([a, b].sort());
    expect(d.listVms().find((v) => v.name === a)!.flows).toBe((await flows(a)).length);
  }, 120_000);
});
