// A guest's own Open vSwitch (3.1, hw-offload=true, default tc-policy) on the
// VM's representors, its rtnetlink going to vpfd's channel: what it offloads
// must behave as on a switchdev NIC. Its flows show as offloaded in its own
// dpctl, vpfd holds them as in_hw filters, frames after the first cross the
// host bridge without reaching the guest, and its log has no tc error.
// scripts/kernelvm/guestovs-guest.sh runs it in the tier's VM; nlshim alone
// gives it the synchronous answers OVS's netlink code expects (C3).
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../../rules/packet.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { packetToHex, udpFromVf0 } from './frame.js';
import { bootKernelVm, bridgePorts, ensureKernelVm, parseProbe, writeGuest, type Pass } from './harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The run directory as the VM mounts it (init.sh). */
const VM_RUN = '/tmp/vpf';

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

interface ShownFilter {
  protocol?: string;
  options?: { handle?: number; in_hw?: boolean; not_in_hw?: boolean };
}

/** `lookups: hit:N missed:M` of a dpctl/show: every packet the guest's kernel datapath saw. */
function lookups(dpshow: string): number {
  const m = /lookups: hit:(\d+) missed:(\d+)/.exec(dpshow);
  if (!m) throw new Error(`no lookups in dpctl/show:\n${dpshow}`);
  return Number(m[1]) + Number(m[2]);
}

async function buildShim(src: string, out: string): Promise<void> {
  await execa('gcc', ['-shared', '-fPIC', '-O2', '-o', out, join(ROOT, src), '-ldl']);
}

describe("a guest's own OVS offloading through vpfd", () => {
  let txt: (p: string) => string;
  let frames: Pass[][];
  const run = mkdtempSync('/tmp/vpf-offload-guestovs-');

  beforeAll(async () => {
    const cache = await ensureKernelVm();
    await buildShim('agent/guest/nlshim.c', join(run, 'nlshim.so'));
    writeGuest(run, 'guestovs-guest.sh', bridgePorts(defaultPortMap(2)));
    const dist = process.env.VPF_OFFLOAD_DIST ?? join(ROOT, 'dist');
    writeFileSync(
      join(run, 'config'),
      [`PROBE=${join(cache, 'probe')}`, 'VM=t', 'VFS=2', 'MODE=vpfd', 'PASSES=2', `DIST=${dist}`,
        `NLSHIM=${VM_RUN}/nlshim.so`].join('\n') + '\n',
      { flag: 'a' },
    );
    writeFileSync(join(run, 'flows'), FLOWS.join('\n') + '\n');
    writeFileSync(join(run, 'frames'), FRAMES.map((f) => `vf0 ${packetToHex(f.packet)}\n`).join(''));
    txt = await bootKernelVm(cache, run, 240_000);
    frames = parseProbe(txt('probe'));
  }, 300_000);
  afterAll(() => (process.env.VPF_KEEP ? console.error(`kept ${run}`) : rmSync(run, { recursive: true, force: true })));

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
    const bad = govsLog()
      .split('\n')
      .filter((l) => /failed to offload|\|(netdev_offload_tc|tc|netdev_offload)(\([^)]*\))?\|(WARN|ERR|EMER)\||\|EMER\|/.test(l));
    expect(bad).toEqual([]);
  });

  it("purging the guest's datapath flows deletes its filters on vpfd", () => {
    const left = (JSON.parse(txt('tc-purged.json')) as ShownFilter[]).filter((f) => f.options?.handle !== undefined);
    expect(left).toEqual([]);
  });
});
