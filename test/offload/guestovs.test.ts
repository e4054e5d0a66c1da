// A guest's own Open vSwitch (3.1, hw-offload=true, default tc-policy) on the
// VM's representors, its rtnetlink going to vpfd's channel: what it offloads
// must behave as on a switchdev NIC. Its flows show as offloaded in its own
// dpctl, vpfd holds them as in_hw filters, frames after the first cross the
// host bridge without reaching the guest, and its log has no tc error.
// scripts/kernelvm/guestovs-guest.sh runs it in the tier's VM; nlshim alone
// gives it the synchronous answers OVS's netlink code expects (C3).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../../rules/packet.js';
import { udpFromVf0 } from './frame.js';
import type { Pass } from './harness.js';
import { lookups, runGuestOvs, tcErrors, type GuestOvsRun, type ShownFilter } from './guestovs-run.js';

const FLOWS = [
  'in_port=vf0,ip,nw_dst=10.0.0.2 actions=output:vf1',
  'in_port=vf0,ip,nw_dst=10.0.0.9 actions=drop',
  'in_port=vf0,arp actions=output:vf1',
  'in_port=vf1 actions=output:vf0',
];

const ct0 = { state: 0, zone: 0, mark: 0, label: '0'.repeat(32) };
const udpTo = udpFromVf0;
const arpWhoHas: Packet = {
  inDev: 'vf0', dstMac: 'ff:ff:ff:ff:ff:ff', srcMac: '02:00:00:00:00:01', vlans: [], mark: 0, priority: 0, ct: ct0, ethType: 0x0806,
  arp: { op: 1, sip: '10.0.0.1', tip: '10.0.0.2', sha: '02:00:00:00:00:01', tha: '00:00:00:00:00:00' },
};
/** Each frame and the ports it must come out of. */
const FRAMES: { packet: Packet; out: string[] }[] = [
  { packet: udpTo('10.0.0.2'), out: ['vf1'] },
  { packet: udpTo('10.0.0.9'), out: [] },
  { packet: arpWhoHas, out: ['vf1'] },
];

describe("a guest's own OVS offloading through vpfd", () => {
  let run: GuestOvsRun;
  let txt: (p: string) => string;
  let frames: Pass[][];

  beforeAll(async () => {
    run = await runGuestOvs({ flavor: 'stock', flows: FLOWS, frames: FRAMES.map((f) => f.packet), passes: 2, timeoutMs: 240_000 });
    ({ txt, frames } = run);
  }, 300_000);
  afterAll(() => run?.done());

  const govsLog = () => txt('govs.log');

  it("the guest's OVS comes up with its bridge, its flows and tc offload on both representors", () => {
    expect(txt('setup.out')).toContain('add-br rc 0');
    expect(txt('gflows.rc').trim(), txt('gflows.out')).toBe('0');
    expect(govsLog()).toContain("vf0: Assigned flow API 'linux_tc'");
    expect(govsLog()).toContain("vf1: Assigned flow API 'linux_tc'");
  });

  it("each of its datapath flows is offloaded, as its own dpctl shows", () => {
    const dp = txt('gdp-after').split('\n').filter((l) => l.startsWith('ufid:'));
    expect(dp, txt('gdp-after')).toHaveLength(FRAMES.length);
    for (const l of dp) expect(l).toMatch(/offloaded:yes, dp:tc/);
    expect(txt('gdpoff-after').split('\n').filter((l) => l.includes('actions:'))).toHaveLength(FRAMES.length);
  });

  it('vpfd holds one in_hw filter per offloaded flow', () => {
    const shown = JSON.parse(txt('tc.json')) as ShownFilter[];
    const filters = shown.filter((f) => f.options?.handle !== undefined);
    expect(filters.map((f) => f.protocol).sort()).toEqual(['arp', 'ip', 'ip']);
    for (const f of filters) expect(f.options).toMatchObject({ in_hw: true });
  });

  it('frames after the first cross the host bridge in tc and never reach the guest', () => {
    expect(frames).toHaveLength(FRAMES.length);
    frames.forEach((passes, n) => {
      const last = passes.at(-1)!;
      expect(last.out.map((o) => o.port), `frame ${n + 1}`).toEqual(FRAMES[n]!.out);
      expect(last.path, `frame ${n + 1}`).toBe('tc');
    });
    // The guest's kernel datapath saw nothing of the second sends: no upcall, no software path.
    expect(lookups(txt('gdpshow-after'))).toBe(lookups(txt('gdpshow-mid')));
  });

  it("the guest's OVS logs no tc error and no failed offload", () => {
    expect(govsLog()).toContain('ovs-vswitchd (Open vSwitch) 3.1');
    const bad = tcErrors(govsLog());
    expect(bad).toEqual([]);
  });

  it("purging the guest's datapath flows deletes its filters on vpfd", () => {
    const left = (JSON.parse(txt('tc-purged.json')) as ShownFilter[]).filter((f) => f.options?.handle !== undefined);
    expect(left).toEqual([]);
  });
});
