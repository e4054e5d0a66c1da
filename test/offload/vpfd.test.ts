// vpfd itself on the offload tier: a kernel datapath with hw-offload, its VM
// driven by the real tc through nlshim. What the guest's `tc -s filter show`
// says of in_hw and hardware counters must be what the datapath did: a rule
// whose flows OVS put into tc is in_hw with its hardware packets, one OVS
// cannot offload (skbedit mark before a mirred ingress) or that asked not to be (skip_hw) is not.
// Run on both kernels: a ct-then-goto rule is in_hw only where the kernel can
// offload recirculation (CONFIG_NET_TC_SKB_EXT), and vpfd says which it is.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPortMap } from '../../translator/portmap.js';
import { packetToHex, udpFromVf0 } from './frame.js';
import { bootKernelVm, bridgePorts, ensureKernelVm, parseProbe, writeGuest, type KernelFlavor, type Pass } from './harness.js';

const RULES = [
  'qdisc add dev vf0 clsact',
  'filter add dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.2 action mirred egress redirect dev vf1',
  'filter add dev vf0 ingress prio 2 protocol ip flower dst_ip 10.0.0.3 action skbedit mark 5 pipe action mirred ingress redirect dev vf1',
  'filter add dev vf0 ingress prio 3 protocol ip flower skip_hw dst_ip 10.0.0.4 action drop',
  // OVN's ACL shape: conntrack, then a chain that reads its state (a recirculation in the datapath)
  'filter add dev vf0 ingress prio 4 protocol ip flower dst_ip 10.0.0.5 action ct zone 3 pipe action goto chain 1',
  'filter add dev vf0 ingress chain 1 prio 1 protocol ip flower ct_state +trk+new action mirred egress redirect dev vf1',
];
const DESTS = ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];

const to = udpFromVf0;

interface ShownFilter {
  pref: number;
  options?: { handle?: number; in_hw?: boolean; not_in_hw?: boolean; in_hw_count?: number; actions?: { stats?: { hw_packets?: number; hw_bytes?: number; packets?: number; bytes?: number } }[] };
}

for (const flavor of ['stock', 'skbext'] as KernelFlavor[]) describe(`vpfd on a kernel datapath with tc offload (${flavor} kernel): in_hw is what the datapath did`, () => {
  const recirc = flavor === 'skbext';
  let txt: (p: string) => string;
  let frames: Pass[][];
  let shown: ShownFilter[];
  let chain1: ShownFilter[];
  const run = mkdtempSync('/tmp/vpf-offload-vpfd-');

  beforeAll(async () => {
    const cache = await ensureKernelVm(flavor);
    writeGuest(run, 'vpfd-guest.sh', bridgePorts(defaultPortMap(2)));
    writeFileSync(join(run, 'config'), `PROBE=${join(cache, 'probe')}\nVM=t\nVFS=2\n`, { flag: 'a' });
    writeFileSync(join(run, 'before'), RULES.join('\n') + '\n');
    writeFileSync(join(run, 'frames'), DESTS.map((d) => `vf0 ${packetToHex(to(d))}\n`).join(''));
    writeFileSync(join(run, 'after'), '-s -j filter show dev vf0 ingress\n-s -j filter show dev vf0 ingress chain 1\n');
    txt = await bootKernelVm(cache, run, 400_000);
    frames = parseProbe(txt('probe'));
    const out = txt('cmd.out');
    const json = (cmd: string) => out.split(`### tc ${cmd}\n`)[1]?.split('### rc')[0] ?? '';
    try {
      shown = JSON.parse(json('-s -j filter show dev vf0 ingress')) as ShownFilter[];
      chain1 = JSON.parse(json('-s -j filter show dev vf0 ingress chain 1')) as ShownFilter[];
    } catch {
      throw new Error(`tc -j printed no JSON:\n${out}\n--- vpfd.log\n${txt('vpfd.log').slice(-3000)}`);
    }
  }, 600_000);
  afterAll(() => (process.env.VPF_KEEP ? console.error(`kept ${run}`) : rmSync(run, { recursive: true, force: true })));

  const filter = (pref: number, list = shown) => list.find((f) => f.pref === pref && f.options?.handle !== undefined)?.options;

  it('accepts every request of the real tc', () => {
    expect(txt('cmd.out').match(/### rc \d+/g)).toEqual(Array(RULES.length + 2).fill('### rc 0'));
  });

  it('frames go where the rules say, the offloadable one through a tc-offloaded datapath flow', () => {
    const outs = frames.map((p) => p.at(-1)!.out.map((o) => o.port));
    expect(outs[0]).toEqual(['vf1']);
    // Not offloaded: the trap hands them to the representor, where the guest's software runs the rule.
    expect(outs[1]).toEqual(['vf0rep']);
    expect(outs[2]).toEqual(['vf0rep']);
    expect(outs[3]).toEqual(['vf1']);
    expect(frames[0]!.at(-1)!.path).toBe('tc');
    // Through tc's chain 0, act_ct and chain 1 alone; on the stock kernel chain 1 is the datapath's recirculation.
    expect(frames[3]!.at(-1)!.path).toBe(recirc ? 'tc' : 'ovs');
  });

  it('the offloaded rule is in_hw with its hardware counters; the others are not_in_hw', () => {
    expect(filter(1)).toMatchObject({ in_hw: true, in_hw_count: 1 });
    // Each frame went twice: the first send missed (upcall, software), the second hit the tc flow.
    // tc counts no Ethernet header, in total and in hardware alike.
    const l3 = packetToHex(to('10.0.0.2')).length / 2 - 14;
    expect(filter(1)!.actions![0]!.stats).toMatchObject({ packets: 2, bytes: 2 * l3, hw_packets: 1, hw_bytes: l3 });
    expect(filter(2)).toMatchObject({ not_in_hw: true });
    expect(filter(2)!.in_hw).toBeUndefined();
    expect(filter(3)).toMatchObject({ not_in_hw: true });
  });

  it(`the ct-then-goto rule and chain 1's are ${recirc ? 'in_hw' : 'not_in_hw'}`, () => {
    expect(filter(4)).toMatchObject(recirc ? { in_hw: true } : { not_in_hw: true });
    expect(filter(1, chain1)).toMatchObject(recirc ? { in_hw: true } : { not_in_hw: true });
    if (recirc) expect(filter(1, chain1)!.actions![0]!.stats).toMatchObject({ hw_packets: 1 });
  });

  it(`GET /offload says whether this kernel can offload recirculating flows (${recirc})`, () => {
    const r = JSON.parse(txt('offload.json')) as { recircSharing?: boolean; datapathFlows: number; offloaded: number };
    expect(r.recircSharing).toBe(recirc);
    expect(r.offloaded, txt('offload.json')).toBeGreaterThanOrEqual(1);
  });
});
