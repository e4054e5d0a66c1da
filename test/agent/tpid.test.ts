// A VM's declared outer TPID, with real frames: filters on the declared VLAN
// protocol are offloaded and take exactly that protocol's frames; a frame
// with another outer TPID, once the datapath has seen it, makes vpfd trap
// the VM's VLAN filters again (the guest's software then decides), says why,
// and keeps saying it across a restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { traffic } from '../helpers/frames.js';
import { PodBed } from '../helpers/podbed.js';

// tp0 behind vf0 sends; tp1 behind vf1 is where the VLAN filter redirects.
const MAC = ['02:00:00:00:0c:00', '02:00:00:00:0c:01'];
const DST = '02:00:00:00:cc:01';
let bed: PodBed;

beforeAll(async () => {
  bed = await PodBed.start('tp', MAC, { reconcileIntervalMs: 3_600_000 }, { outerTpid: '802.1Q' });
}, 60_000);

afterAll(async () => {
  await bed?.stop();
});

const filter = (line: string) => bed.filter(line);

/** How many of 3 frames with `tags` sent from tp0 reached tp1. */
async function atVf1(tags: string): Promise<number> {
  const got = await traffic(bed.pods[0]!, { dst: DST, src: MAC[0]!, tags }, [bed.pods[1]!]);
  return got[0]!.length;
}

const offloaded = async () => (await bed.d.vmRules('tp')).map((r) => ({ prio: r.rule.prio, inHw: r.stats.inHw, why: r.notOffloadedReason }));

describe('declared outer TPID 802.1Q', () => {
  it('offloads filters on protocol 802.1Q and 802.1ad; each takes only its own TPID\'s frames', async () => {
    await filter(`dev vf0 ingress prio 1 protocol 802.1Q flower dst_mac ${DST} vlan_id 100 vlan_ethtype 0x88b5 action mirred egress redirect dev vf1`);
    // Under the declaration no frame of this VM carries 802.1ad outside: this filter can never match.
    await filter(`dev vf0 ingress prio 2 protocol 802.1ad flower dst_mac ${DST} action drop`);
    expect(await offloaded()).toEqual([{ prio: 1, inHw: true, why: undefined }, { prio: 2, inHw: true, why: undefined }]);
    expect(await atVf1('8100:100:3')).toBe(3);
    // Another VID, no tag, or a second tag (dl_type is then its TPID): the filter does not take them.
    expect(await atVf1('8100:101:3')).toBe(0);
    expect(await atVf1('')).toBe(0);
    expect(await atVf1('8100:100:3,8100:7:0')).toBe(0);
  }, 60_000);

  it('a frame whose outer TPID breaks the declaration sends the VLAN filters back to the guest, for good', async () => {
    // A VID no frame used yet: the userspace datapath leaves the TPID out of a megaflow's mask, so an 802.1ad
    // frame would ride the megaflow an 802.1Q frame made (the kernel datapath, where offload happens, keeps it
    // exact: flow_netlink.c "VLAN frames must have an exact match on the TPID").
    await atVf1('88a8:200:3');
    await bed.d.auditOuterTpids();
    const after = await offloaded();
    expect(after.map((r) => r.inHw)).toEqual([false, false]);
    expect(after[0]!.why).toMatch(/TPID/);
    expect(bed.d.listVms().find((v) => v.name === 'tp')!.outerTpidBroken).toMatch(/outer TPID 0x88a8 where 0x8100 was declared/);
    // Trapped: the frame goes to the representor for the guest's software, no longer straight to vf1.
    expect(await atVf1('8100:100:3')).toBe(0);
    await bed.restart();
    expect((await offloaded()).map((r) => r.inHw)).toEqual([false, false]);
    expect(bed.d.listVms().find((v) => v.name === 'tp')!.outerTpidBroken).toBeDefined();
  }, 90_000);
});
