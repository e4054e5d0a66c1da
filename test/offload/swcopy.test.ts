// A filter vpfd cannot offload still does what it says: on a switchdev the
// guest's kernel keeps a software copy of every filter (cls_api.c adds it to
// software before it offers it to the driver), and what the NIC hands to a
// representor meets that copy. Here the guest's hand-written tc goes through
// nlshim with VPF_NL_SWCOPY, in a guest namespace whose vfN are the peers of
// the bridge's representor ports (scripts/kernelvm/swcopy-guest.sh). A VLAN
// filter on a VM that declared no outer TPID is trapped (OpenFlow cannot match
// a TPID, docs/mapping.md): vpfd hands every frame with its VID to the guest,
// whose kernel tells 802.1ad from 802.1Q and redirects only the first.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../../rules/packet.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { packetToHex, udpFromVf0 } from './frame.js';
import { bootKernelVm, bridgePorts, ensureKernelVm, parseProbe, writeGuest, type Pass } from './harness.js';
import { expectLastPasses, type ExpectedFrame, type ShownFilter } from './guestovs-run.js';

const RULES = [
  'qdisc add dev vf0 ingress',
  // qdiscs are the guest kernel's (vpfd keeps none, and would ACK both): a second is refused, and it lists the first
  'qdisc add dev vf0 ingress',
  'qdisc show dev vf0',
  'filter add dev vf0 ingress prio 1 protocol 802.1ad flower vlan_id 7 action mirred egress redirect dev vf1',
  'filter add dev vf0 ingress prio 2 protocol ip flower dst_ip 10.0.0.2 action mirred egress redirect dev vf1',
  // the guest's kernel takes it (own9 is its own device), vpfd does not (no representor): the add fails, the copy goes
  'filter add dev vf0 ingress prio 3 protocol ip flower dst_ip 10.0.0.3 action mirred egress redirect dev own9',
];
const plain = udpFromVf0('10.0.0.2');
const tagged = (tpid: number): Packet => ({ ...plain, vlans: [{ tpid, vid: 7, pcp: 0 }] });
/** Each frame and where it must come out: the trapped filter's in the guest's software, the other in tc. */
const FRAMES: ExpectedFrame[] = [
  { packet: tagged(0x88a8), out: ['vf1'] },
  // trapped too (its VID), but no filter of the guest's matches it: it stays with the guest's representor
  { packet: tagged(0x8100), out: [] },
  { packet: plain, out: ['vf1'] },
];

describe("a filter vpfd leaves to software runs in the guest's kernel (stock kernel)", () => {
  const run = mkdtempSync('/tmp/vpf-offload-swcopy-');
  let txt: (p: string) => string;
  let frames: Pass[][];
  let vpfd: ShownFilter[];
  let guest: ShownFilter[];

  beforeAll(async () => {
    const cache = await ensureKernelVm('stock');
    writeGuest(run, 'swcopy-guest.sh', bridgePorts(defaultPortMap(2)));
    writeFileSync(join(run, 'config'), `PROBE=${join(cache, 'probe')}\nVM=t\nVFS=2\nSWCOPY=${process.env.VPF_SWCOPY ?? 1}\n`, { flag: 'a' });
    writeFileSync(join(run, 'before'), RULES.join('\n') + '\n');
    writeFileSync(join(run, 'frames'), FRAMES.map((f) => `${f.packet.inDev} ${packetToHex(f.packet)}\n`).join(''));
    txt = await bootKernelVm(cache, run, 400_000);
    frames = parseProbe(txt('probe'));
    const own = (file: string) => {
      try {
        return (JSON.parse(txt(file)) as ShownFilter[]).filter((f) => f.options?.handle !== undefined);
      } catch {
        throw new Error(`${file} is not tc's JSON:\n${txt(file)}\n--- cmd.out\n${txt('cmd.out')}`);
      }
    };
    vpfd = own('tc.json');
    guest = own('gtc.json');
  }, 600_000);
  afterAll(() => (process.env.VPF_KEEP ? console.error(`kept ${run}`) : rmSync(run, { recursive: true, force: true })));

  const pref = (list: ShownFilter[], n: number) => list.find((f) => f.pref === n)?.options;
  const stats = (list: ShownFilter[], n: number) => pref(list, n)?.actions?.[0]?.stats;

  it('the guest sets its qdisc up in its own kernel and its filters through vpfd: the VLAN filter not_in_hw, the other in_hw', () => {
    expect(txt('cmd.out').match(/### rc \d+/g), txt('cmd.out')).toEqual(['### rc 0', '### rc 2', '### rc 0', '### rc 0', '### rc 0', '### rc 2']);
    expect(txt('cmd.out')).toMatch(/### tc qdisc add dev vf0 ingress\n### rc 0\n### tc qdisc add dev vf0 ingress\n.*File exists/);
    expect(txt('cmd.out')).toMatch(/### tc qdisc show dev vf0\n(qdisc noqueue 0: root .*\n)?qdisc ingress ffff: parent ffff:fff1/);
    expect(txt('cmd.out')).toContain('No such device');
    expect(pref(vpfd, 1)).toMatchObject({ not_in_hw: true });
    expect(pref(vpfd, 2)).toMatchObject({ in_hw: true });
  });

  it("the guest's kernel holds both, with vpfd's handles, and no copy of the filter vpfd refused", () => {
    expect(guest.map((f) => [f.pref, f.options?.handle])).toEqual(vpfd.map((f) => [f.pref, f.options?.handle]));
  });

  it("frames come out as the guest's filters say: the 802.1ad one redirected by its software, the 802.1Q one not", () => {
    expectLastPasses(frames, FRAMES);
    expect(frames[2]!.at(-1)!.path).toBe('tc');
  });

  it("the trapped filter's software counters count the 802.1ad frame's sends; the offloaded one's, none", () => {
    expect(stats(guest, 1)).toMatchObject({ packets: 2 });
    expect(stats(guest, 2)).toMatchObject({ packets: 0 });
  });

  it("the guest's tc -s says what a kernel would: software plus hardware, the trap's 802.1Q frames not counted", () => {
    // The trapped filter: what the guest's software matched (its trap handed over the 802.1Q frame's sends too).
    expect(stats(vpfd, 1)).toMatchObject({ packets: 2 });
    expect(stats(vpfd, 1)?.hw_packets).toBeUndefined();
    // The offloaded one: the first send through the host's upcall (software), the second in tc (hardware).
    expect(stats(vpfd, 2)).toMatchObject({ packets: 2, hw_packets: 1 });
    // Used when the guest's software ran it, after it was installed (tcf_t ages, clock_t).
    const times = pref(vpfd, 1)?.actions?.[0];
    expect(times?.first_used, JSON.stringify(times)).toBeGreaterThan(0);
    expect(times!.last_used!).toBeLessThan(times!.installed!);
  });
});
