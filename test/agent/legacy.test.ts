// The legacy path end to end: a guest's `ip link set PF vf N ...` and devlink
// eswitch requests on vpfd's channels, realized on the VM's bridge, checked with
// real frames between network namespaces (VFs pod lg0..lg2, the wire lgw),
// tags read off the wire. Each behaviour is what an mlx5 legacy eswitch does.
import { execa } from 'execa';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { talk } from '../../agent/ctl/channel.js';
import { Errno } from '../../rules/errors.js';
import { NlmF, parseError, parseMessages, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { decodeLinkReply, encodeGetLinkRequest, encodeRxModeRequest, encodeVfSetRequest, RTEXT_FILTER } from '../../rules/netlink/link.js';
import { decodeDevlinkReply, encodeEswitchRequest, encodeFamilyRequest } from '../../rules/netlink/devlink.js';
import { encodeFilterRequest } from '../../rules/netlink/tc.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import type { FlowerRule } from '../../rules/model.js';
import { parseVfArgs } from '../../rules/vfsyntax.js';
import { parseDumpFlows } from '../../ovs/ctl/ofctl.js';
import { cookieKind, FlowKind } from '../../translator/cookie.js';
import * as frames from '../helpers/frames.js';
import { PodBed } from '../helpers/podbed.js';

const MAC = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:aa'];
const WIRE = 3;
const UNKNOWN = '02:00:00:00:00:99';
const BCAST = 'ff:ff:ff:ff:ff:ff';
let bed: PodBed;
const sh = (...a: string[]) => execa(a[0]!, a.slice(1));

beforeAll(async () => {
  // VFs behind lg0..lg2, the wire lgw behind the uplink.
  bed = await PodBed.start('lg', MAC.slice(0, WIRE), {}, {}, { wire: MAC[WIRE]! });
}, 60_000);

afterAll(async () => {
  await bed?.stop();
});

/** `ip link set pf vf ...` as the guest sends it; the errno of the answer (0 = ok) and its extack. */
async function vf(args: string): Promise<{ errno: number; message?: string }> {
  const req = parseVfArgs(['vf', ...args.split(' ')]);
  if (!req.ok) throw new Error(req.error.message);
  const e = parseError((await talk(bed.channel, encodeVfSetRequest({ seq: bed.nextSeq() }, 1, [req.value]))).at(-1)!);
  return { errno: e.errno, message: e.message };
}

/** One request on a channel, resolving with the first reply (a GET answer has no ACK after it). */
function ask(path: string, req: Buffer): Promise<NlMessage> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => s.write(req));
    s.on('error', reject);
    s.on('data', (b) => {
      s.end();
      resolve(parseMessages(b.subarray(0, b.readUInt32LE(0)))[0]!);
    });
  });
}

async function eswitch(mode?: 'legacy' | 'switchdev'): Promise<{ errno?: number; mode?: string }> {
  const path = bed.d.genlChannelPath(bed.vm);
  const family = decodeDevlinkReply(await ask(path, encodeFamilyRequest({ seq: bed.nextSeq() })));
  if (!family.ok || family.value.cmd !== 'family') throw new Error('no devlink family on the channel');
  const h = { bus: 'pci', dev: '0000:01:00.0' };
  if (mode) return { errno: parseError(await ask(path, encodeEswitchRequest({ seq: bed.nextSeq() }, { cmd: 'eswitch-set', ...h, mode }, family.value.id))).errno };
  const r = decodeDevlinkReply(await ask(path, encodeEswitchRequest({ seq: bed.nextSeq() }, { cmd: 'eswitch-get', ...h }, family.value.id), ), family.value.id);
  return { mode: r.ok && r.value.cmd === 'eswitch' ? r.value.mode : undefined };
}

async function links() {
  const replies = await talk(bed.channel, encodeGetLinkRequest({ seq: bed.nextSeq(), flags: NlmF.REQUEST | NlmF.DUMP }, 0, RTEXT_FILTER.VF));
  const r = decodeLinkReply(replies[0]!);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

/**
 * frames.ts traffic() from pod `from` (its own MAC as source unless `src`): what each pod received, by pod
 * index ([] if not listening). Each send takes the sender's start plus `seconds`, so the tests that send
 * many have room for a loaded machine.
 */
async function traffic(from: number, f: Omit<frames.Send, 'src'> & { src?: string }, seconds = 2, listeners = bed.pods): Promise<frames.Frame[][]> {
  const got = await frames.traffic(bed.pods[from]!, { src: MAC[from]!, ...f }, listeners, seconds);
  return bed.pods.map((p) => got[listeners.indexOf(p)] ?? []);
}
const counts = (got: frames.Frame[][]) => got.map((g) => g.length);

async function bridgeFlows() {
  return parseDumpFlows(await bed.ovs.ofctl('dump-flows', 'vpf-lg'));
}

describe('legacy eswitch through vpfd', () => {
  it('in switchdev mode, MAC and rate work and VLAN/spoofchk/trust/link state are EOPNOTSUPP (mlx5)', async () => {
    expect(await eswitch()).toEqual({ mode: 'switchdev' });
    expect((await vf('0 mac 02:00:00:00:00:01')).errno).toBe(0);
    // Rate works in both modes: the VF's traffic goes through its meter before classification.
    expect((await vf('0 max_tx_rate 5')).errno).toBe(0);
    const entry = (await bridgeFlows()).find((f) => f.table === 0 && f.match.includes('in_port=100'))!;
    expect(entry.actions).toMatch(/^meter:65536,/);
    expect(await bed.ovs.ofctl('dump-meters', 'vpf-lg')).toMatch(/meter=65536 kbps burst stats bands=\s*type=drop rate=5000 /);
    expect((await vf('0 max_tx_rate 0')).errno).toBe(0);
    expect(await bed.ovs.ofctl('dump-meters', 'vpf-lg')).not.toMatch(/meter=65536/);
    for (const a of ['0 vlan 100', '0 spoofchk on', '0 trust on', '0 state disable']) {
      const r = await vf(a);
      expect(r.errno, a).toBe(Errno.EOPNOTSUPP);
      expect(r.message, a).toMatch(/switchdev/);
    }
  });

  it('devlink eswitch set legacy swaps the switchdev flows for the legacy ones', async () => {
    expect(await eswitch('legacy')).toEqual({ errno: 0 });
    expect(await eswitch()).toEqual({ mode: 'legacy' });
    const kinds = new Set((await bridgeFlows()).map((f) => cookieKind(f.cookie)));
    expect(kinds).toEqual(new Set([FlowKind.LEGACY]));
    // No representors in legacy mode: tc on them is refused.
    const r = (parseFilter(splitArgs('dev vf0 ingress prio 1 protocol ip flower action drop')) as { value: FlowerRule }).value;
    expect(parseError((await talk(bed.channel, encodeFilterRequest(r))).at(-1)!).errno).toBe(Errno.EOPNOTSUPP);
  });

  it('refuses what a NIC refuses: multicast MAC, qos > 7, min_tx_rate without egress queues, a VF that does not exist', async () => {
    expect((await vf('0 mac 03:00:00:00:00:01')).errno).toBe(Errno.EINVAL);
    expect((await vf('0 vlan 10 qos 8')).errno).toBe(Errno.EINVAL);
    expect((await vf('0 min_tx_rate 10 max_tx_rate 100')).errno).toBe(Errno.EOPNOTSUPP);
    expect((await vf('7 mac 02:00:00:00:00:07')).errno).toBe(Errno.EINVAL);
  });

  it('delivers by destination MAC, floods broadcast, sends unknown unicast to the wire only', async () => {
    expect((await vf('1 mac 02:00:00:00:00:02')).errno).toBe(0);
    // vf2 keeps a zero MAC: it gets no unicast, only broadcast.
    expect(counts(await traffic(0, { dst: MAC[1]! }))).toEqual([0, 3, 0, 0]);
    expect(counts(await traffic(0, { dst: UNKNOWN }))).toEqual([0, 0, 0, 3]);
    expect(counts(await traffic(0, { dst: BCAST }))).toEqual([0, 3, 3, 3]);
    expect(counts(await traffic(WIRE, { dst: MAC[0]! }))).toEqual([3, 0, 0, 0]);
  }, 60_000);

  it('port VLAN: pushes the tag with its PCP toward the wire, strips it toward the VF, drops guest tags', async () => {
    expect((await vf('0 vlan 100 qos 3')).errno).toBe(0);
    const out = await traffic(0, { dst: UNKNOWN });
    expect(out[WIRE]!.map((f) => f.tags)).toEqual(Array(3).fill([{ tpid: 0x8100, vid: 100, pcp: 3 }]));
    const back = await traffic(WIRE, { dst: MAC[0]!, tags: '8100:100:0' });
    expect(back[0]!.map((f) => f.tags)).toEqual([[], [], []]);
    expect(counts(await traffic(WIRE, { dst: MAC[0]! }))[0]).toBe(0);
    expect(counts(await traffic(WIRE, { dst: MAC[0]!, tags: '8100:200:0' }))[0]).toBe(0);
    expect(counts(await traffic(0, { dst: UNKNOWN, tags: '8100:5:0' }))[WIRE]).toBe(0);
    // 802.1ad: the S-tag goes on top of the guest's own C-tag.
    expect((await vf('0 vlan 20 proto 802.1ad')).errno).toBe(0);
    const qinq = await traffic(0, { dst: UNKNOWN, tags: '8100:5:0' });
    expect(qinq[WIRE]![0]?.tags).toEqual([
      { tpid: 0x88a8, vid: 20, pcp: 0 },
      { tpid: 0x8100, vid: 5, pcp: 0 },
    ]);
    expect((await vf('0 vlan 0')).errno).toBe(0);
    expect(counts(await traffic(0, { dst: UNKNOWN }))[WIRE]).toBe(3);
  }, 120_000);

  it('spoof checking drops frames whose source is not the VF MAC and counts them as tx_dropped', async () => {
    expect((await vf('0 spoofchk on')).errno).toBe(0);
    expect(counts(await traffic(0, { dst: UNKNOWN, src: '02:00:00:00:00:55' }))[WIRE]).toBe(0);
    expect(counts(await traffic(0, { dst: UNKNOWN }))[WIRE]).toBe(3);
    const l = await links();
    expect(l.vfs[0]!.spoofchk).toBe(true);
    expect(Number(l.vfs[0]!.stats!.txDropped)).toBeGreaterThanOrEqual(3);
    expect((await vf('0 spoofchk off')).errno).toBe(0);
  }, 60_000);

  it('unknown unicast from the wire reaches a promiscuous VF only when it is trusted', async () => {
    expect(parseError((await talk(bed.channel, encodeRxModeRequest({ seq: bed.nextSeq() }, 2 + 2, { promisc: true }))).at(-1)!).errno).toBe(0);
    expect(counts(await traffic(WIRE, { dst: UNKNOWN }))[2]).toBe(0);
    expect((await vf('2 trust on')).errno).toBe(0);
    expect(counts(await traffic(WIRE, { dst: UNKNOWN }))).toEqual([0, 0, 3, 0]);
    expect((await vf('2 trust off')).errno).toBe(0);
  }, 60_000);

  it('link state disable cuts the VF off both ways; enable restores it', async () => {
    expect((await vf('1 state disable')).errno).toBe(0);
    expect(counts(await traffic(0, { dst: MAC[1]! }))[1]).toBe(0);
    expect(counts(await traffic(1, { dst: BCAST }))).toEqual([0, 0, 0, 0]);
    expect((await vf('1 state enable')).errno).toBe(0);
    expect(counts(await traffic(0, { dst: MAC[1]! }))[1]).toBe(3);
  }, 60_000);

  it('max_tx_rate polices what the VF sends', async () => {
    // 400 frames of 1000 bytes over 0.8 s: 4 Mbit/s offered.
    const offered = { dst: UNKNOWN, count: 400, size: 1000, gapMs: 2 };
    const free = counts(await traffic(0, offered, 2))[WIRE]!;
    expect((await vf('0 max_tx_rate 1')).errno).toBe(0);
    const policed = counts(await traffic(0, offered, 2))[WIRE]!;
    expect(free).toBeGreaterThan(300);
    // 1 Mbit/s for 0.8 s plus a 100 kbit burst lets about 110 of them through.
    expect(policed).toBeGreaterThan(0);
    expect(policed).toBeLessThan(200);
    expect((await vf('0 max_tx_rate 0')).errno).toBe(0);
  }, 60_000);

  it('reports every VF to ip link show, and keeps the settings across a switch to switchdev and back', async () => {
    expect((await vf('0 vlan 7 qos 1')).errno).toBe(0);
    let l = await links();
    expect(l.numVf).toBe(3);
    expect(l.vfs.map((v) => v.mac)).toEqual([MAC[0], MAC[1], '00:00:00:00:00:00']);
    expect(l.vfs[0]).toMatchObject({ vlan: 7, qos: 1 });
    expect(await eswitch('switchdev')).toEqual({ errno: 0 });
    expect(new Set((await bridgeFlows()).map((f) => cookieKind(f.cookie)))).toEqual(new Set([FlowKind.DEFAULT]));
    l = await links();
    expect(l.vfs[0]!.vlan).toBe(7);
    expect(l.vfs[1]!.linkState).toBe('enable');
    expect(await eswitch('legacy')).toEqual({ errno: 0 });
    l = await links();
    // Entering legacy resets link state to auto (mlx5 esw_legacy_enable); the rest is kept.
    expect(l.vfs[1]!.linkState).toBe('auto');
    expect(l.vfs[0]!.vlan).toBe(7);
    const out = await traffic(0, { dst: UNKNOWN });
    expect(out[WIRE]!.map((f) => f.tags[0]?.vid)).toEqual([7, 7, 7]);
  }, 60_000);
});

describe('vpfctl against the daemon', () => {
  const vpfctl = (...a: string[]) => execa('node', ['dist/bin/vpfctl.js', '--state-dir', bed.config.stateDir, ...a], { reject: false });
  it('vf sets and shows like ip link, eswitch shows like devlink, refusals print like ip', async () => {
    expect((await vpfctl('vf', 'lg', '1', 'trust', 'on', 'spoofchk', 'on')).exitCode).toBe(0);
    const shown = await vpfctl('vf', 'lg', 'show');
    expect(shown.stdout).toMatch(/^    vf 1 +link\/ether 02:00:00:00:00:02 brd ff:ff:ff:ff:ff:ff, spoof checking on, link-state \w+, trust on/m);
    expect((await vpfctl('eswitch', 'lg', 'show')).stdout).toMatch(/^pci\/0000:00:00\.0: mode legacy inline-mode none encap-mode basic$/m);
    const bad = await vpfctl('vf', 'lg', '1', 'vlan', '10', 'qos', '9');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^Error: .*qos.*\.$/m);
    expect((await vpfctl('vf', 'lg', '1', 'trust', 'off', 'spoofchk', 'off')).exitCode).toBe(0);
  });
});

describe('link state auto', () => {
  it("follows the uplink's carrier: the wire going down cuts auto VFs off, enable VFs keep talking", async () => {
    // After the round trip every VF is auto; vf1 and vf2 become enable, vf0 stays auto.
    expect((await vf('1 state enable')).errno).toBe(0);
    expect((await vf('2 state enable')).errno).toBe(0);
    expect((await vf('2 mac 02:00:00:00:00:03')).errno).toBe(0);
    const linkDown = async () => (await bridgeFlows()).some((f) => f.table === 0 && f.priority === 300 && f.match.includes('in_port=100'));
    await sh('ip', '-n', bed.pods[WIRE]!, 'link', 'set', 'eth0', 'down');
    try {
      await expect.poll(linkDown, { timeout: 10_000, interval: 100 }).toBe(true);
      const vfsOnly = bed.pods.slice(0, 3);
      expect(counts(await traffic(0, { dst: MAC[1]! }, 1.2, vfsOnly))[1]).toBe(0);
      expect(counts(await traffic(2, { dst: MAC[0]! }, 1.2, vfsOnly))[0]).toBe(0);
      expect(counts(await traffic(2, { dst: MAC[1]! }, 1.2, vfsOnly))[1]).toBe(3);
      expect(counts(await traffic(2, { dst: BCAST }, 1.2, vfsOnly))).toEqual([0, 3, 0, 0]);
    } finally {
      await sh('ip', '-n', bed.pods[WIRE]!, 'link', 'set', 'eth0', 'up');
    }
    await expect.poll(linkDown, { timeout: 10_000, interval: 100 }).toBe(false);
    expect(counts(await traffic(0, { dst: MAC[1]! }))[1]).toBe(3);
  }, 120_000);
});

describe('VFs backed by a host NIC', () => {
  it("sends the guest's request to the host PF and returns the kernel's answer unchanged", async () => {
    const pf = `vpfhpf${process.pid % 100000}`;
    await sh('ip', 'link', 'add', pf, 'type', 'veth', 'peer', 'name', `${pf}p`);
    try {
      await bed.d.addVm({ name: 'lgp', vfs: 2, hostPf: { pf, vfs: [5, 6] } });
      const req = parseVfArgs(['vf', '1', 'mac', '02:00:00:00:00:01']);
      if (!req.ok) throw new Error(req.error.message);
      const e = parseError((await talk(bed.d.channelPath('lgp'), encodeVfSetRequest({ seq: bed.nextSeq() }, 1, [req.value]))).at(-1)!);
      // A veth has no ndo_set_vf_mac: the kernel's bare EOPNOTSUPP, as `ip link set PF vf 6 mac ...` gets it.
      expect(e.errno).toBe(Errno.EOPNOTSUPP);
      expect(e.message).toBeUndefined();
      const ip = await execa('ip', ['link', 'set', pf, 'vf', '6', 'mac', '02:00:00:00:00:01'], { reject: false });
      expect(ip.stderr).toMatch(/Operation not supported/);
      // Refused by the host, so not recorded: the guest still sees no MAC on VF 1.
      const shown = decodeLinkReply((await talk(bed.d.channelPath('lgp'), encodeGetLinkRequest({ seq: bed.nextSeq(), flags: NlmF.REQUEST | NlmF.DUMP }, 0, RTEXT_FILTER.VF)))[0]!);
      expect(shown.ok && shown.value.vfs[1]!.mac).toBe('00:00:00:00:00:00');
      await bed.d.delVm('lgp');
    } finally {
      await execa('ip', ['link', 'del', pf], { reject: false });
    }
  });
});
