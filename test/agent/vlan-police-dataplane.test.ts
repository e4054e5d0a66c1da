// Real frames through vpfd's flows for vlan pop/modify and police actions:
// the tag stack a pod receives after `vlan pop`/`vlan modify` is what Linux
// 6.1's act_vlan leaves, and a police limits what gets through, one token
// bucket per police index however many filters bind it (act_police.c: the
// index is the action; filters bind it, they do not copy it).
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { talk } from '../../agent/ctl/channel.js';
import { guestEnv } from '../../agent/ctl/guest.js';
import { bridgeNameFor } from '../../ovs/bridge.js';
import { parseDumpPorts } from '../../ovs/ctl/ofctl.js';
import { NlmF, parseError } from '../../rules/netlink/nlmsg.js';
import { encodeActionRequest, RtmAction } from '../../rules/netlink/tcaction.js';
import { splitArgs } from '../../rules/tcsyntax/index.js';
import { parseAction } from '../../rules/tcsyntax/actions.js';
import { Tokens } from '../../rules/tcsyntax/lex.js';
import { traffic } from '../helpers/frames.js';
import { PodBed } from '../helpers/podbed.js';

// vp0 behind vf0, vp1 behind vf1 (where every rule here redirects), vp2 behind vf2.
const MAC = ['02:00:00:00:0b:00', '02:00:00:00:0b:01', '02:00:00:00:0b:02'];
let bed: PodBed;

beforeAll(async () => {
  // Reconciles every 0.7 s, so several run while frames flow: one must never refill a police's bucket.
  bed = await PodBed.start('vp', MAC, { reconcileIntervalMs: 700 });
}, 60_000);

afterAll(async () => {
  await bed?.stop();
});

const filter = (line: string) => bed.filter(line);

/** `tc actions add action <words>` as the guest sends it (m_action.c); must be accepted. */
async function action(words: string): Promise<void> {
  const a = parseAction(new Tokens(splitArgs(words)));
  const req = encodeActionRequest({ op: 'new', hdr: { type: RtmAction.NEW, flags: NlmF.REQUEST | NlmF.ACK | NlmF.CREATE | NlmF.EXCL, seq: bed.nextSeq(), pid: 0 }, replace: false, actions: [a] });
  const e = parseError((await talk(bed.channel, req)).at(-1)!);
  expect(e.errno, words).toBe(0);
}

/** Frames sent from vp0 (or `from`) to `dst` with `tags`: the tag stacks vp1 received. */
async function tagsAtVf1(dst: string, tags: string, from = 0) {
  const got = await traffic(bed.pods[from]!, { dst, src: MAC[from]!, tags }, [bed.pods[1]!]);
  return got[0]!.map((f) => f.tags);
}

/** How many of `count` 1000-byte frames from pod `from` to `dst` vp1 received. */
async function through(from: number, dst: string, count: number): Promise<number> {
  const got = await traffic(bed.pods[from]!, { dst, src: MAC[from]!, count, size: 1000, gapMs: 2 }, [bed.pods[1]!], 1 + (count * 2) / 1000 + 1);
  return got[0]!.length;
}

/** The real `tc -s -j ARGS` against the VM's channel, as the guest runs it (nlshim), parsed. */
async function tcJson(args: string): Promise<any[]> {
  const r = await execa('tc', ['-s', '-j', ...args.split(' ')], { env: guestEnv(bed.config.stateDir, bed.vm), extendEnv: false });
  return JSON.parse(r.stdout);
}

/** What `tc -s` prints for an action: its counters. */
const counted = (a: any) => ({ packets: a.stats.packets, bytes: a.stats.bytes, drops: a.stats.drops, overlimits: a.stats.overlimits });

/**
 * The actions of the filter `tc -s filter show <sel>` prints, once `done` says their counters are in: OVS pushes
 * a userspace datapath flow's counters a moment after the packets (the revalidator).
 */
async function settled(sel: string, done: (actions: any[]) => boolean): Promise<any[]> {
  let actions: any[] = [];
  for (let i = 0; i < 50; i++) {
    actions = (await tcJson(`filter show ${sel}`)).find((f) => f.options)!.options.actions;
    if (done(actions)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return actions;
}

const Q = 0x8100;
const AD = 0x88a8;

describe('vlan pop and modify on protocol all, frames read off the wire', () => {
  // Each rule takes its own destination MAC, so the rules of one test never see another's frames.
  it('vlan pop: a tagged frame arrives untagged, an untagged one unchanged, 802.1ad+802.1Q keeps the inner 802.1Q tag', async () => {
    const dst = '02:00:00:00:aa:01';
    await filter(`dev vf0 ingress prio 1 protocol all flower dst_mac ${dst} action vlan pop pipe action mirred egress redirect dev vf1`);
    expect(await tagsAtVf1(dst, '8100:100:3')).toEqual([[], [], []]);
    // act_vlan.c tcf_vlan_act: pop of an untagged frame is a no-op (skb_vlan_pop returns 0 with no tag).
    expect(await tagsAtVf1(dst, '')).toEqual([[], [], []]);
    // skb_vlan_pop removes the outer tag and moves the next one up, whatever its TPID.
    expect(await tagsAtVf1(dst, '88a8:20:2,8100:100:5')).toEqual(Array(3).fill([{ tpid: Q, vid: 100, pcp: 5 }]));
  }, 60_000);

  it('vlan modify id 7 rewrites an 802.1ad tag to 802.1Q (the action protocol), keeping its PCP; untagged frames pass unchanged', async () => {
    const dst = '02:00:00:00:aa:02';
    await filter(`dev vf0 ingress prio 2 protocol all flower dst_mac ${dst} action vlan modify id 7 pipe action mirred egress redirect dev vf1`);
    // Linux 6.1 act_vlan.c TCA_VLAN_ACT_MODIFY: __vlan_hwaccel_put_tag(skb, p->tcfv_push_proto, tci) with the old PCP.
    expect(await tagsAtVf1(dst, '88a8:20:5')).toEqual(Array(3).fill([{ tpid: Q, vid: 7, pcp: 5 }]));
    expect(await tagsAtVf1(dst, '8100:30:6')).toEqual(Array(3).fill([{ tpid: Q, vid: 7, pcp: 6 }]));
    expect(await tagsAtVf1(dst, '')).toEqual([[], [], []]);
  }, 60_000);

  it('vlan modify id 9 protocol 802.1ad priority 1 on 802.1ad+802.1Q rewrites only the outer tag', async () => {
    const dst = '02:00:00:00:aa:03';
    await filter(`dev vf0 ingress prio 3 protocol all flower dst_mac ${dst} action vlan modify id 9 protocol 802.1ad priority 1 pipe action mirred egress redirect dev vf1`);
    expect(await tagsAtVf1(dst, '88a8:20:5,8100:100:3')).toEqual(Array(3).fill([{ tpid: AD, vid: 9, pcp: 1 }, { tpid: Q, vid: 100, pcp: 3 }]));
  }, 60_000);
});

describe('police actions limit real traffic', () => {
  // Userspace-datapath meters are token buckets (dpif-netdev): the bounds are wide, the unpoliced control exact.
  it('a filter police at 1 Mbit/s lets through about rate x time + burst of a 4 Mbit/s burst', async () => {
    const dst = '02:00:00:00:bb:01';
    await filter(`dev vf0 ingress prio 10 protocol all flower dst_mac ${dst} action mirred egress redirect dev vf1`);
    const free = await through(0, dst, 400);
    const policed = '02:00:00:00:bb:02';
    await filter(`dev vf0 ingress prio 11 protocol all flower dst_mac ${policed} action police rate 1mbit burst 10k conform-exceed drop/pipe action mirred egress redirect dev vf1`);
    // 400 frames of 1000 bytes over 0.8 s: 1 Mbit/s passes about 100 of them, the 10 KiB burst about 10 more.
    const got = await through(0, policed, 400);
    expect(free).toBeGreaterThan(350);
    expect(got).toBeGreaterThan(20);
    expect(got).toBeLessThan(220);
    // act_api.c: the mirred runs on (and counts) what the police let through, exactly what vp1 received; the police
    // counts all 400 and drops the rest. Its meter is this filter's alone, so the figures are exact.
    const [police, mirred] = await settled('dev vf0 ingress prio 11', (a) => a[0]?.stats.packets === 400);
    expect(counted(police)).toEqual({ packets: 400, bytes: 400 * 986, drops: 400 - got, overlimits: 400 - got });
    expect(counted(mirred)).toEqual({ packets: got, bytes: got * 986, drops: 0, overlimits: 0 });
  }, 60_000);

  // A slow rate (1 kbit/s: one 1000-byte frame per 8 s) and a 20 KiB burst: what passes is the bucket's content,
  // so a second sender on the same bucket finds it empty, on a bucket of its own finds it full.
  it('filters on two VFs bound to the same index share one bucket', async () => {
    await action('police rate 1kbit burst 20k conform-exceed drop/pipe index 21');
    const dst = '02:00:00:00:cc:01';
    await filter(`dev vf0 ingress prio 20 protocol all flower dst_mac ${dst} action police index 21 conform-exceed drop/pipe action mirred egress redirect dev vf1`);
    // Binding an existing index ignores the filter's own parameters (act_police.c tcf_police_init: exists && bind).
    await filter(`dev vf2 ingress prio 20 protocol all flower dst_mac ${dst} action police rate 2mbit burst 50k conform-exceed drop/pipe index 21 action mirred egress redirect dev vf1`);
    const first = await through(0, dst, 100);
    const second = await through(2, dst, 100);
    // 20 KiB = 20 frames of 1000 bytes (plus their headers' worth of rounding).
    expect(first).toBeGreaterThan(10);
    expect(first).toBeLessThan(40);
    expect(second).toBeLessThan(5);
  }, 60_000);

  // act_police.c: one action, one set of counters, whichever filter's packet reached it; tc shows them in every
  // bound filter and in the action API's list. 1000-byte frames: tc counts 986 bytes each (no Ethernet header).
  it('a police shared by two filters counts both filters\' packets, its drops and overlimits, in each filter and in tc actions ls', async () => {
    await action('police rate 1kbit burst 10k conform-exceed drop/pipe index 51');
    const dst = '02:00:00:00:cc:51';
    for (const dev of ['vf0', 'vf2']) await filter(`dev ${dev} ingress prio 51 protocol all flower dst_mac ${dst} action police index 51 conform-exceed drop/pipe action mirred egress redirect dev vf1`);
    // What got past the police is what OVS sent out of vf1's port (docs/protocol.md: port 100+N), read apart from the
    // meter; that veth must send nothing of its own (IPv6 router solicitations, MLD reports).
    await execa('ip', ['netns', 'exec', bed.ovs.netns, 'sysctl', '-qw', `net.ipv6.conf.${bed.vm}1-dp.disable_ipv6=1`]);
    const sentToVf1 = async () => parseDumpPorts(await bed.ovs.ofctl('dump-ports', bridgeNameFor(bed.vm))).get(101)!.txPackets;
    const before = await sentToVf1();
    for (const from of [0, 2]) await traffic(bed.pods[from]!, { dst, src: MAC[from]!, count: 30, size: 1000, gapMs: 2 }, []);
    const actionsOf = async (dev: string) => (await tcJson(`filter show dev ${dev} ingress prio 51`)).find((f) => f.options)!.options.actions;
    // OVS pushes a userspace datapath flow's counters a moment later (the revalidator), its meter's at once: wait
    // until the filters' flows hold all 60 (then the mirreds have all the police let through between them).
    let vf0: any[] = [];
    let vf2: any[] = [];
    for (let i = 0; i < 50; i++) {
      [vf0, vf2] = [await actionsOf('vf0'), await actionsOf('vf2')];
      if (vf0[0]?.stats.packets === 60 && vf0[1].stats.packets + vf2[1].stats.packets === 60 - vf0[0].stats.drops) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const dropped = 60 - ((await sentToVf1()) - before);
    // The 10 KiB burst lets about 10 frames through, the 1 kbit/s rate none more.
    expect(dropped).toBeGreaterThan(40);
    expect(dropped).toBeLessThan(55);
    const total = { packets: 60, bytes: 60 * 986, drops: dropped, overlimits: dropped };
    expect(counted(vf0[0])).toEqual(total);
    expect(counted(vf2[0])).toEqual(total);
    // Each mirred counts what the police let through of its filter's 30: one meter for both, so each is given the
    // drops in the share its packets are of the meter's (docs/semantics.md); between them, exactly what vp1 got.
    expect(vf0[1].stats.packets + vf2[1].stats.packets).toBe(60 - dropped);
    for (const m of [vf0[1], vf2[1]]) {
      expect(m.stats.packets).toBeLessThanOrEqual(30);
      expect(m.stats.bytes).toBe(m.stats.packets * 986);
    }
    const listed = (await tcJson('actions ls action police'))[1].actions.find((a: any) => a.index === 51);
    expect(counted(listed)).toEqual(total);
    const got = (await tcJson('actions get action police index 51'))[1].actions[0];
    expect(counted(got)).toEqual(total);
    // Its filters go; the action API's police stays (act_api.c), and its counters with it.
    for (const dev of ['vf0', 'vf2']) await execa('tc', ['filter', 'del', 'dev', dev, 'ingress', 'prio', '51'], { env: guestEnv(bed.config.stateDir, bed.vm), extendEnv: false });
    const alone = (await tcJson('actions get action police index 51'))[1].actions[0];
    expect({ ...counted(alone), ref: alone.ref, bind: alone.bind }).toEqual({ ...total, ref: 1, bind: 0 });
  }, 60_000);

  // act_police.c tcf_police_dump -> tcf_tm_dump: the police's own tcf_t. tcf_idr_create stamped its install when
  // `tc actions add` made it; each packet it runs on, through any filter, stamps its lastuse.
  it('a police of the action API shows its own install time in the filter that binds it later, and its last use', async () => {
    await action('police rate 1kbit burst 10k conform-exceed drop/pipe index 61');
    await new Promise((r) => setTimeout(r, 3000));
    const dst = '02:00:00:00:cc:61';
    await filter(`dev vf0 ingress prio 61 protocol all flower dst_mac ${dst} action police index 61 conform-exceed drop/pipe action mirred egress redirect dev vf1`);
    const [police, mirred] = await settled('dev vf0 ingress prio 61', () => true);
    // tc prints whole seconds: the police was made 3 s before the filter and its mirred.
    expect(police.installed).toBeGreaterThanOrEqual(3);
    expect(mirred.installed ?? 0).toBeLessThanOrEqual(1);
    // Never used yet: lastuse is the install (tcf_idr_create).
    expect(police.last_used).toBe(police.installed);
    await new Promise((r) => setTimeout(r, 2000));
    await traffic(bed.pods[0]!, { dst, src: MAC[0]!, count: 5, size: 1000, gapMs: 2 }, []);
    const [used] = await settled('dev vf0 ingress prio 61', (a) => a[0]?.stats.packets === 5);
    // Used by the frames sent after the filter came (3 s after the police): lastuse well after the install.
    expect(used.installed).toBeGreaterThanOrEqual(5);
    expect(used.last_used ?? 0).toBeLessThan(used.installed - 3);
    const listed = (await tcJson('actions get action police index 61'))[1].actions[0];
    expect(listed.installed).toBeGreaterThanOrEqual(5);
    expect(listed.last_used ?? 0).toBeLessThan(listed.installed - 3);
  }, 60_000);

  it('two indices with identical parameters are two buckets', async () => {
    await action('police rate 1kbit burst 30k conform-exceed drop/pipe index 31');
    await action('police rate 1kbit burst 30k conform-exceed drop/pipe index 32');
    const dst = '02:00:00:00:dd:01';
    await filter(`dev vf0 ingress prio 30 protocol all flower dst_mac ${dst} action police index 31 conform-exceed drop/pipe action mirred egress redirect dev vf1`);
    await filter(`dev vf2 ingress prio 30 protocol all flower dst_mac ${dst} action police index 32 conform-exceed drop/pipe action mirred egress redirect dev vf1`);
    const first = await through(0, dst, 100);
    const second = await through(2, dst, 100);
    expect(first).toBeGreaterThan(15);
    expect(first).toBeLessThan(50);
    expect(second).toBeGreaterThan(15);
    expect(second).toBeLessThan(50);
  }, 60_000);

  it('two filters each with a police of their own (no index: each gets a fresh one) are two buckets', async () => {
    const dst = '02:00:00:00:ee:01';
    for (const dev of ['vf0', 'vf2']) await filter(`dev ${dev} ingress prio 40 protocol all flower dst_mac ${dst} action police rate 2kbit burst 40k conform-exceed drop/pipe action mirred egress redirect dev vf1`);
    const first = await through(0, dst, 100);
    const second = await through(2, dst, 100);
    expect(first).toBeGreaterThan(25);
    expect(first).toBeLessThan(60);
    expect(second).toBeGreaterThan(25);
    expect(second).toBeLessThan(60);
  }, 60_000);
});
