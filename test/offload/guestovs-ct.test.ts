// A guest's own Open vSwitch with a stateful ACL and a load balancer, the
// shapes OVN gives a logical port (ct with nat, recirculate, commit what is
// new from inside with a mark, DNAT what goes to the VIP, let replies back on
// +est+rpl and the mark, drop the rest), offloading through vpfd on the tier's
// kernel with CONFIG_NET_TC_SKB_EXT, where its datapath shares recirculation
// ids with tc. Its probe of flower's ct_state support runs on its own
// ovs-system, so nlshim must give that to its kernel (VPF_NL_REPS); every
// datapath flow it makes, recirculation and +rpl included, must then be
// offloaded, and the conversation must cross the host in tc without reaching
// the guest. Its kernel keeps a software copy of its filters (nlshim
// VPF_NL_SWCOPY), as a switchdev's tc core does: a packet that misses at
// chain 1 on vpfd's bridge misses there in the guest's software too, and its
// OVS gets it at recirc_id 1 (tc_skb_ext), as from a NIC.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../../rules/packet.js';
import { udpFromVf0 } from './frame.js';
import type { Pass } from './harness.js';
import { expectLastPasses, lookups, runGuestOvs, tcErrors, type ExpectedFrame, type GuestOvsRun, type ShownFilter } from './guestovs-run.js';

/** OVS turns a meter into a shared tc police action (RTM_NEWACTION), and a flow using it into a filter naming its index. */
const METERS = ['meter=1,pktps,burst,band=type=drop,rate=1000,burst_size=100'];
const FLOWS = [
  'table=0,priority=40000,in_port=vf0,ip,nw_dst=10.0.0.50 actions=meter:1,output:vf1',
  'table=0,in_port=vf0,ip actions=ct(zone=5,nat,table=1)',
  'table=0,in_port=vf1,ip actions=ct(zone=5,nat,table=2)',
  // OVN's load balancer: a new connection to the VIP is DNATed to the backend and marked 1
  'table=1,priority=20,udp,ct_state=+trk+new,nw_dst=10.0.0.100,tp_dst=8080 actions=ct(commit,zone=5,nat(dst=10.0.0.2:80),exec(set_field:1->ct_mark)),output:vf1',
  'table=1,priority=10,ip,ct_state=+trk+new actions=ct(commit,zone=5,exec(set_field:2->ct_mark)),output:vf1',
  'table=1,priority=10,ip,ct_state=+trk+est-rpl actions=output:vf1',
  'table=2,priority=10,ip,ct_state=+trk+est+rpl,ct_mark=1 actions=output:vf0',
  'table=2,priority=10,ip,ct_state=+trk+est+rpl,ct_mark=2 actions=output:vf0',
  'table=2,priority=1,ip actions=drop',
];

const from = (p: Packet, src: [string, number], dst: [string, number]): Packet => ({ ...p, ip: { ...p.ip!, src: src[0], dst: dst[0] }, l4: { src: src[1], dst: dst[1] } });
const vf0 = udpFromVf0('10.0.0.2');
const vf1: Packet = { ...vf0, inDev: 'vf1', srcMac: vf0.dstMac, dstMac: vf0.srcMac };
const CLIENT: [string, number] = ['10.0.0.1', 1000], LB_CLIENT: [string, number] = ['10.0.0.1', 1001];
const SERVER: [string, number] = ['10.0.0.2', 80], VIP: [string, number] = ['10.0.0.100', 8080];
/** Each frame, where it must come out, and as what. */
const FRAMES: ExpectedFrame[] = [
  { packet: from(vf0, CLIENT, SERVER), out: ['vf1'], as: from(vf0, CLIENT, SERVER) },
  { packet: from(vf1, SERVER, CLIENT), out: ['vf0'], as: from(vf1, SERVER, CLIENT) },
  // to the VIP: out DNATed to the backend; its reply out un-NATed, from the VIP
  { packet: from(vf0, LB_CLIENT, VIP), out: ['vf1'], as: from(vf0, LB_CLIENT, SERVER) },
  { packet: from(vf1, SERVER, LB_CLIENT), out: ['vf0'], as: from(vf1, VIP, LB_CLIENT) },
  // metered: far below its rate, every packet passes
  { packet: from(vf0, CLIENT, ['10.0.0.50', 80]), out: ['vf1'], as: from(vf0, CLIENT, ['10.0.0.50', 80]) },
  // the client again, +est-rpl: no frame before made the guest install that flow, so its first send misses at
  // chain 1 on vpfd's bridge and in the guest's software copy, and reaches its OVS at recirc_id 1
  { packet: from(vf0, CLIENT, SERVER), out: ['vf1'], as: from(vf0, CLIENT, SERVER) },
];
const MISSES = 1;
// The host's conntrack meets the conversation after the guest's flows are offloaded: each frame's first send
// makes a host datapath flow (an upcall, whose output may land in the next send's window). The last frame's
// first send goes through the guest's handler, which under TCG answers it only after putting its flow through
// vpfd, seconds later, in a later send's window (seen as late as the fourth): the sixth send is clean.
const PASSES = 6;

describe("a guest's own OVS with conntrack, offloading through vpfd (skbext kernel)", () => {
  let run: GuestOvsRun;
  let txt: (p: string) => string;
  let frames: Pass[][];

  beforeAll(async () => {
    run = await runGuestOvs({ flavor: 'skbext', flows: FLOWS, meters: METERS, frames: FRAMES.map((f) => f.packet), passes: PASSES, timeoutMs: 300_000 });
    ({ txt, frames } = run);
  }, 360_000);
  afterAll(() => run?.done());

  it("the guest's OVS comes up with its meter and flows, and probes its own kernel's flower: every ct_state bit", () => {
    expect(txt('gflows.rc').trim(), txt('gflows.out')).toBe('0');
    expect(txt('govs.log')).toContain('probe tc: supported ovs ct_state bits: 0x3f');
  });

  it('each of its datapath flows is offloaded, recirculations and +rpl matches included', () => {
    const dp = txt('gdp-after').split('\n').filter((l) => l.startsWith('ufid:'));
    expect(dp.some((l) => /recirc_id\(0x[1-9a-f]/.test(l) && /ct_state\(0x2a\/0x2a\)/.test(l)), txt('gdp-after')).toBe(true);
    expect(dp.length, txt('gdp-after')).toBeGreaterThanOrEqual(4);
    // Without a software copy, the miss after chain 1 would reach the guest's datapath at recirc_id 0, and OVS
    // would put its chain 0 flow again (EEXIST) and keep it in its kernel datapath: every flow is in tc.
    for (const l of dp) expect(l, txt('gdp-after')).toMatch(/offloaded:yes, dp:tc/);
    // The +est-rpl flow the last frame's miss made: at recirc_id 1, where the miss happened.
    expect(dp.some((l) => /recirc_id\(0x1\)/.test(l) && /in_port\(vf0\)/.test(l) && /ct_state\(0x22\/0x2a\)/.test(l)), txt('gdp-after')).toBe(true);
  });

  it("its kernel holds a software copy of each filter vpfd holds, with vpfd's handle, and loses it when OVS purges", () => {
    const key = (f: ShownFilter) => `${f.chain}/${f.options?.handle}`;
    const own = (file: string) => (JSON.parse(txt(file)) as ShownFilter[]).filter((x) => x.options?.handle !== undefined);
    expect(own('gtc.json').map(key).sort()).toEqual(own('tc.json').map(key).sort());
    expect(own('gtc.json').length).toBeGreaterThan(0);
    expect(own('gtc-purged.json')).toEqual([]);
    expect(own('tc-purged.json')).toEqual([]);
  });

  it('vpfd holds them as in_hw filters: ct then goto chain, +trk+new with a commit, +trk+est+rpl, and the meter as a police', () => {
    const filters = ['tc.json', 'tc-vf1.json'].flatMap((f) => (JSON.parse(txt(f)) as ShownFilter[]).filter((x) => x.options?.handle !== undefined));
    for (const f of filters) expect(f.options, JSON.stringify(f)).toMatchObject({ in_hw: true });
    const states = filters.map((f) => f.options?.keys?.ct_state).filter((s) => s !== undefined).sort();
    expect(states).toEqual(expect.arrayContaining(['+trk+est+rpl', '+trk+new']));
    for (const file of ['tc.json', 'tc-vf1.json']) {
      const own = (JSON.parse(txt(file)) as ShownFilter[]).filter((x) => x.options?.handle !== undefined);
      expect(own.some((f) => f.chain === 0 && f.options?.actions?.some((a) => a.kind === 'ct')), file).toBe(true);
    }
    // The meter: OVS's shared police action (its index from METER_POLICE_IDS_BASE, 0x10000000: netdev-offload-tc.c).
    expect(filters.some((f) => f.options?.actions?.[0]?.kind === 'police')).toBe(true);
  });

  it('after the offload, the conversation crosses the host in tc, and only the +est miss reaches the guest', () => {
    expectLastPasses(frames, FRAMES);
    frames.forEach((passes, n) => expect(passes.at(-1)!.path, `frame ${n + 1}`).toBe('tc'));
    // Only the last frame's miss reaches the guest's datapath (once, or again while its handler is slow).
    const reached = lookups(txt('gdpshow-after')) - lookups(txt('gdpshow-mid'));
    expect(reached).toBeGreaterThanOrEqual(MISSES);
    expect(reached).toBeLessThanOrEqual(MISSES * PASSES);
  });

  it("the guest's OVS logs no tc error and no failed offload", () => {
    expect(tcErrors(txt('govs.log'))).toEqual([]);
  });
});
