// A guest's own Open vSwitch with a stateful ACL, the shape OVN gives a
// logical port (ct, recirculate, commit what is new from inside, let replies
// back on +est+rpl, drop the rest), offloading through vpfd on the tier's
// kernel with CONFIG_NET_TC_SKB_EXT, where its datapath shares recirculation
// ids with tc. Its probe of flower's ct_state support runs on its own
// ovs-system, so nlshim must give that to its kernel (VPF_NL_REPS); every
// datapath flow it makes, recirculation and +rpl included, must then be
// offloaded, and the conversation must cross the host's tc without reaching
// the guest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../../rules/packet.js';
import { udpFromVf0 } from './frame.js';
import type { Pass } from './harness.js';
import { lookups, runGuestOvs, tcErrors, type GuestOvsRun, type ShownFilter } from './guestovs-run.js';

const FLOWS = [
  'table=0,in_port=vf0,ip actions=ct(zone=5,table=1)',
  'table=0,in_port=vf1,ip actions=ct(zone=5,table=2)',
  'table=1,priority=10,ip,ct_state=+trk+new actions=ct(commit,zone=5),output:vf1',
  'table=1,priority=10,ip,ct_state=+trk+est actions=output:vf1',
  'table=2,priority=10,ip,ct_state=+trk+est+rpl actions=output:vf0',
  'table=2,priority=1,ip actions=drop',
];

const request = udpFromVf0('10.0.0.2');
const reply: Packet = { ...request, inDev: 'vf1', srcMac: request.dstMac, dstMac: request.srcMac, ip: { ...request.ip!, src: '10.0.0.2', dst: '10.0.0.1' }, l4: { src: 80, dst: 1000 } };
/** The request and its reply, and where each must come out. */
const FRAMES: { packet: Packet; out: string[] }[] = [
  { packet: request, out: ['vf1'] },
  { packet: reply, out: ['vf0'] },
];
// The host's conntrack meets the conversation after the guest's flows are offloaded: each frame's first send
// makes a host datapath flow (an upcall, whose output may land in the next send's window), the third is clean.
const PASSES = 3;

describe("a guest's own OVS with conntrack, offloading through vpfd (skbext kernel)", () => {
  let run: GuestOvsRun;
  let txt: (p: string) => string;
  let frames: Pass[][];

  beforeAll(async () => {
    run = await runGuestOvs({ flavor: 'skbext', flows: FLOWS, frames: FRAMES.map((f) => f.packet), passes: PASSES, timeoutMs: 300_000 });
    ({ txt, frames } = run);
  }, 360_000);
  afterAll(() => run?.done());

  it("the guest's OVS probes its own kernel's flower and finds every ct_state bit", () => {
    expect(txt('govs.log')).toContain('probe tc: supported ovs ct_state bits: 0x3f');
  });

  it('each of its datapath flows is offloaded, recirculations and +rpl matches included', () => {
    const dp = txt('gdp-after').split('\n').filter((l) => l.startsWith('ufid:'));
    expect(dp.some((l) => /recirc_id\(0x[1-9a-f]/.test(l) && /ct_state\(0x2a\/0x2a\)/.test(l)), txt('gdp-after')).toBe(true);
    expect(dp.length, txt('gdp-after')).toBeGreaterThanOrEqual(4);
    for (const l of dp) expect(l).toMatch(/offloaded:yes, dp:tc/);
  });

  it('vpfd holds them as in_hw filters: ct then goto chain, then +trk+new with a commit, and +trk+est+rpl', () => {
    const filters = ['tc.json', 'tc-vf1.json'].flatMap((f) => (JSON.parse(txt(f)) as ShownFilter[]).filter((x) => x.options?.handle !== undefined));
    for (const f of filters) expect(f.options, JSON.stringify(f)).toMatchObject({ in_hw: true });
    const states = filters.map((f) => f.options?.keys?.ct_state).filter((s) => s !== undefined).sort();
    expect(states).toEqual(expect.arrayContaining(['+trk+est+rpl', '+trk+new']));
    expect(filters.filter((f) => f.chain === 0 && f.options?.actions?.some((a) => a.kind === 'ct')).length).toBe(2);
  });

  it('after the offload, the conversation crosses the host in tc and never reaches the guest', () => {
    expect(frames).toHaveLength(FRAMES.length);
    frames.forEach((passes, n) => {
      const last = passes.at(-1)!;
      expect(last.out.map((o) => o.port), `frame ${n + 1}: ${JSON.stringify(passes.map((p) => [p.path, p.out.map((o) => o.port)]))}`).toEqual(FRAMES[n]!.out);
      expect(last.path, `frame ${n + 1}`).toBe('tc');
    });
    expect(lookups(txt('gdpshow-after'))).toBe(lookups(txt('gdpshow-mid')));
  });

  it("the guest's OVS logs no tc error and no failed offload", () => {
    expect(tcErrors(txt('govs.log'))).toEqual([]);
  });
});
