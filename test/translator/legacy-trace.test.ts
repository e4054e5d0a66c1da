// The legacy eswitch on a real Open vSwitch: the flows of translateLegacy are
// loaded into a private OVS (userspace datapath) and ofproto/trace says where
// each frame goes and with which tags. Every behaviour of docs/legacy.md is
// checked by name, then a property test compares random settings x random
// frames with a small reference switch, under vlan-limit 1 and 2.
import fc from 'fast-check';
import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowLine, meterLine } from '../../ovs/openflow/flow.js';
import { defaultVfSettings, VLAN_PROTO_8021AD, VLAN_PROTO_8021Q, type VfSettings } from '../../rules/vf.js';
import { translateLegacy, type LegacyInput, type LegacyTranslation } from '../../translator/legacy.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { addTestBridge, startOvs, type PrivateOvs } from '../harness/ovs.js';
import { odpToOfport, topLevel } from './support/trace.js';

const BR = 'br0';
const ports = defaultPortMap(5);
const U = ports.uplink.port, PF = ports.uplink.rep;
const VF = ports.vfs.map((p) => p.port);
const REP = ports.vfs.map((p) => p.rep);

interface Tag {
  tpid: number;
  vid: number;
  pcp: number;
}
interface Frame {
  inPort: number;
  src: string;
  dst: string;
  /** Outermost first. */
  vlans: Tag[];
}
interface Out {
  port: number;
  vlans: Tag[];
}

const q = (vid: number, pcp = 0): Tag => ({ tpid: VLAN_PROTO_8021Q, vid, pcp });
const ad = (vid: number, pcp = 0): Tag => ({ tpid: VLAN_PROTO_8021AD, vid, pcp });
const BCAST = 'ff:ff:ff:ff:ff:ff';
const MCAST = '01:00:5e:00:00:fb';
const UNKNOWN = '02:99:99:99:99:99';
const OUTSIDE = '02:77:00:00:00:01';
const PF_MAC = '02:aa:00:00:00:01';
const mac = (n: number) => `02:00:00:00:00:${(n + 1).toString(16).padStart(2, '0')}`;

let ovs: PrivateOvs;
let ofToOdp: Map<number, number>;
let odpToOf: Map<number, number>;

async function install(t: LegacyTranslation): Promise<void> {
  const file = `${ovs.rundir}/legacy-flows.txt`;
  // Meters first: a flow naming a missing meter is refused (OVS cannot bundle meter mods).
  await ovs.ofctl('del-meters', BR);
  for (const m of t.meters) await ovs.ofctl('add-meter', BR, meterLine(m));
  writeFileSync(file, t.flows.map(flowLine).join('\n') + '\n');
  await execa('ovs-ofctl', ['-O', 'OpenFlow15', '--bundle', 'replace-flows', ovs.mgmt(BR), file], { env: ovs.env });
}

/** A datapath-format flow: unlike the OpenFlow form it can state each tag's TPID and a second tag. */
function odpFlow(f: Frame): string {
  let l2 = 'eth_type(0x88b5)';
  for (const t of [...f.vlans].reverse()) l2 = `eth_type(0x${t.tpid.toString(16)}),vlan(vid=${t.vid},pcp=${t.pcp}),encap(${l2})`;
  return `in_port(${ofToOdp.get(f.inPort)}),eth(src=${f.src},dst=${f.dst}),${l2}`;
}

/** Where OVS sends the frame: the "Datapath actions:" line replayed on the frame's tag stack. */
async function trace(f: Frame): Promise<{ outs: Out[]; metered: boolean; raw: string }> {
  const raw = await ovs.appctl('ofproto/trace', 'ovs-netdev', odpFlow(f));
  const lines = raw.split('\n').filter((l) => l.startsWith('Datapath actions:'));
  if (lines.length !== 1) throw new Error(`expected one datapath action line:\n${raw}`);
  const acts = lines[0]!.slice('Datapath actions:'.length).trim();
  const outs: Out[] = [];
  let vlans = structuredClone(f.vlans);
  let metered = false;
  if (acts === 'drop') return { outs, metered, raw };
  for (const a of topLevel(acts)) {
    if (/^\d+$/.test(a)) outs.push({ port: odpToOf.get(Number(a)) ?? -1, vlans: structuredClone(vlans) });
    else if (a === 'pop_vlan') vlans = vlans.slice(1);
    else if (a.startsWith('push_vlan(')) {
      const kv = Object.fromEntries(a.slice(10, -1).split(',').map((x) => x.split('=') as [string, string]));
      vlans = [{ tpid: kv.tpid ? Number(kv.tpid) : VLAN_PROTO_8021Q, vid: Number(kv.vid), pcp: Number(kv.pcp) }, ...vlans];
    } else if (a.startsWith('meter(')) metered = true;
    else throw new Error(`unexpected datapath action ${a} in:\n${raw}`);
  }
  return { outs, metered, raw };
}

const sorted = (o: Out[]) => [...o].sort((a, b) => a.port - b.port);
async function where(f: Frame): Promise<Out[]> {
  return sorted((await trace(f)).outs);
}
const from = (inPort: number, dst: string, vlans: Tag[] = [], src?: string): Frame => ({
  inPort,
  dst,
  vlans,
  src: src ?? (inPort === U ? OUTSIDE : inPort === PF ? PF_MAC : mac(VF.indexOf(inPort))),
});

/** OVS parses this many tags (ovs-vswitchd.conf.db(5) other_config:vlan-limit; 1 is its default); ovs-vswitchd applies a change at once. */
let vlanLimit = 1;
async function setVlanLimit(n: number): Promise<void> {
  await ovs.vsctl('set', 'Open_vSwitch', '.', `other_config:vlan-limit=${n}`);
  vlanLimit = n;
}

const settings = (n: number, over: Partial<VfSettings> = {}): VfSettings => ({ ...defaultVfSettings(), mac: mac(n), ...over });

beforeAll(async () => {
  ovs = await startOvs();
  await setVlanLimit(1);
  await addTestBridge(ovs, BR);
  const all: [string, number][] = [['up', U], ['pf', PF], ...VF.map((p, n) => [`vf${n}`, p] as [string, number]), ...REP.map((p, n) => [`rep${n}`, p] as [string, number])];
  for (const [name, no] of all) await ovs.vsctl('add-port', BR, name, '--', 'set', 'interface', name, 'type=internal', `ofport_request=${no}`);
  odpToOf = await odpToOfport(ovs, BR);
  ofToOdp = new Map([...odpToOf].map(([o, f]) => [f, o]));
}, 60_000);

afterAll(async () => {
  await ovs?.stop();
});

describe('legacy eswitch on Open vSwitch: switching', () => {
  // VF0: VGT, promisc but untrusted      VF1: VST 10 qos 3, spoofchk
  // VF2: VST 10, trusted promisc         VF3: VST 20 802.1ad, trusted promisc
  // VF4: VGT, trusted promisc
  const input: LegacyInput = {
    ports,
    uplinkUp: true,
    pfMac: PF_MAC,
    vfs: [
      settings(0, { promisc: true }),
      settings(1, { vlan: 10, qos: 3, spoofchk: true }),
      settings(2, { vlan: 10, trust: true, promisc: true }),
      settings(3, { vlan: 20, vlanProto: VLAN_PROTO_8021AD, trust: true, promisc: true }),
      settings(4, { trust: true, promisc: true }),
    ],
  };
  beforeAll(async () => install(translateLegacy(input)));

  it('unicast to a VF MAC reaches that VF only, in its VLAN, tag stripped for a port-VLAN VF', async () => {
    expect(await where(from(U, mac(0)))).toEqual([{ port: VF[0], vlans: [] }]);
    expect(await where(from(U, mac(0), [q(33)]))).toEqual([{ port: VF[0], vlans: [q(33)] }]);
    expect(await where(from(U, mac(1), [q(10, 5)]))).toEqual([{ port: VF[1], vlans: [] }]);
    expect(await where(from(U, PF_MAC))).toEqual([{ port: PF, vlans: [] }]);
    // Outside the VF's VLAN the frame does not reach it (mlx5: FDB by MAC, egress ACL drops).
    expect(await where(from(U, mac(1)))).toEqual([]);
    expect(await where(from(U, mac(1), [q(20)]))).toEqual([]);
  });

  it('broadcast and multicast flood the frame VLAN, never back to the ingress port', async () => {
    // Untagged from the wire: the VGT ports and the PF; no port-VLAN VF.
    expect(await where(from(U, BCAST))).toEqual([
      { port: PF, vlans: [] },
      { port: VF[0], vlans: [] },
      { port: VF[4], vlans: [] },
    ]);
    // VLAN 10 from the wire: VGT ports tagged, the two VLAN-10 VFs stripped, VF3 (VLAN 20) not.
    expect(await where(from(U, MCAST, [q(10, 1)]))).toEqual([
      { port: PF, vlans: [q(10, 1)] },
      { port: VF[0], vlans: [q(10, 1)] },
      { port: VF[1], vlans: [] },
      { port: VF[2], vlans: [] },
      { port: VF[4], vlans: [q(10, 1)] },
    ]);
    // From VF1: tagged 10/3 on the way out, to VF2 stripped, not back to VF1.
    expect(await where(from(VF[1]!, BCAST))).toEqual([
      { port: U, vlans: [q(10, 3)] },
      { port: PF, vlans: [q(10, 3)] },
      { port: VF[0], vlans: [q(10, 3)] },
      { port: VF[2], vlans: [] },
      { port: VF[4], vlans: [q(10, 3)] },
    ]);
    // From the PF: like any trunk port.
    expect(await where(from(PF, BCAST))).toEqual([
      { port: U, vlans: [] },
      { port: VF[0], vlans: [] },
      { port: VF[4], vlans: [] },
    ]);
  });

  it('unknown unicast from a VF or the PF goes to the wire only', async () => {
    expect(await where(from(VF[0]!, UNKNOWN))).toEqual([{ port: U, vlans: [] }]);
    expect(await where(from(VF[4]!, UNKNOWN, [q(7)]))).toEqual([{ port: U, vlans: [q(7)] }]);
    expect(await where(from(PF, UNKNOWN))).toEqual([{ port: U, vlans: [] }]);
  });

  it('unknown unicast from the wire reaches only trusted promiscuous VFs of its VLAN', async () => {
    // VF0 asked for promisc but is not trusted: ignored (mlx5 esw_update_vport_rx_mode).
    expect(await where(from(U, UNKNOWN))).toEqual([{ port: VF[4], vlans: [] }]);
    expect(await where(from(U, UNKNOWN, [q(10)]))).toEqual([
      { port: VF[2], vlans: [] },
      { port: VF[4], vlans: [q(10)] },
    ]);
    expect(await where(from(U, UNKNOWN, [ad(20), q(5)]))).toEqual([
      { port: VF[3], vlans: [q(5)] },
      { port: VF[4], vlans: [ad(20), q(5)] },
    ]);
  });

  it('port VLAN (802.1Q): untagged frames get VID and PCP on the wire, guest-tagged frames are dropped', async () => {
    expect(await where(from(VF[1]!, UNKNOWN))).toEqual([{ port: U, vlans: [q(10, 3)] }]);
    expect(await where(from(VF[1]!, UNKNOWN, [q(5)]))).toEqual([]);
    expect(await where(from(VF[1]!, BCAST, [q(10)]))).toEqual([]);
    expect(await where(from(VF[2]!, UNKNOWN, [q(10)]))).toEqual([]);
  });

  it('port VLAN 802.1ad: the S-tag goes over the guest C-tag (QinQ); toward the VF only the S-tag is stripped', async () => {
    expect(await where(from(VF[3]!, UNKNOWN, [q(5, 2)]))).toEqual([{ port: U, vlans: [ad(20), q(5, 2)] }]);
    expect(await where(from(VF[3]!, UNKNOWN))).toEqual([{ port: U, vlans: [ad(20)] }]);
    expect(await where(from(U, mac(3), [ad(20), q(5)]))).toEqual([{ port: VF[3], vlans: [q(5)] }]);
  });

  it('vlan-limit=2 is not needed for 802.1ad and loses tags: OVS tracks two, a guest QinQ frame under an S-tag loses its innermost', async () => {
    const guestQinQ = from(VF[3]!, UNKNOWN, [ad(7), q(5)]);
    // vlan-limit=1: the guest's tags are payload to OVS, the S-tag goes on top, nothing is lost.
    expect(await where(guestQinQ)).toEqual([{ port: U, vlans: [ad(20), ad(7), q(5)] }]);
    await setVlanLimit(2);
    try {
      expect(await where(guestQinQ)).toEqual([{ port: U, vlans: [ad(20), ad(7)] }]);
      // One guest tag still fits.
      expect(await where(from(VF[3]!, UNKNOWN, [q(5, 2)]))).toEqual([{ port: U, vlans: [ad(20), q(5, 2)] }]);
    } finally {
      await setVlanLimit(1);
    }
  });

  it('OpenFlow matches the outer VID whatever its TPID: an S-tag 10 from the wire reaches the 802.1Q VLAN-10 VF', async () => {
    // Found with ofproto/trace: vlan_tci covers the outer tag for 0x8100 and 0x88a8 alike (docs/legacy.md, limits).
    expect(await where(from(U, mac(1), [ad(10)]))).toEqual([{ port: VF[1], vlans: [] }]);
  });

  it('spoofchk drops frames whose source MAC is not the admin MAC', async () => {
    expect(await where(from(VF[1]!, UNKNOWN, [], '02:66:66:66:66:66'))).toEqual([]);
    expect(await where(from(VF[1]!, UNKNOWN, [], mac(1)))).toEqual([{ port: U, vlans: [q(10, 3)] }]);
    // Without spoofchk any source passes.
    expect(await where(from(VF[0]!, UNKNOWN, [], '02:66:66:66:66:66'))).toEqual([{ port: U, vlans: [] }]);
  });

  it('traffic between VFs stays on the bridge (VEB)', async () => {
    expect(await where(from(VF[1]!, mac(2)))).toEqual([{ port: VF[2], vlans: [] }]);
    expect(await where(from(VF[0]!, mac(4), [q(10)]))).toEqual([{ port: VF[4], vlans: [q(10)] }]);
    expect(await where(from(VF[4]!, mac(0)))).toEqual([{ port: VF[0], vlans: [] }]);
  });

  it('frames from a VF representor port are dropped: legacy mode has no representors', async () => {
    expect(await where({ inPort: REP[0]!, src: mac(0), dst: BCAST, vlans: [] })).toEqual([]);
  });
});

describe('legacy eswitch on Open vSwitch: link state, zero MAC, rate, counters', () => {
  it('link-state disable drops everything from and to the VF', async () => {
    const vfs = [settings(0, { linkState: 'disable' }), settings(1), settings(2), settings(3), settings(4)];
    await install(translateLegacy({ ports, vfs, uplinkUp: true, pfMac: PF_MAC }));
    expect(await where(from(VF[0]!, BCAST))).toEqual([]);
    expect(await where(from(VF[0]!, mac(1)))).toEqual([]);
    expect(await where(from(U, mac(0)))).toEqual([]);
    expect(await where(from(VF[1]!, mac(0)))).toEqual([]);
    expect((await where(from(U, BCAST))).map((o) => o.port)).toEqual([PF, VF[1], VF[2], VF[3], VF[4]]);
  });

  it('link-state auto follows the uplink: down with it; enable stays up and VF-to-VF still flows', async () => {
    const vfs = [settings(0, { linkState: 'auto' }), settings(1, { linkState: 'enable' }), settings(2, { linkState: 'enable' }), settings(3), settings(4)];
    await install(translateLegacy({ ports, vfs, uplinkUp: false, pfMac: PF_MAC }));
    expect(await where(from(VF[0]!, mac(1)))).toEqual([]);
    expect(await where(from(VF[1]!, mac(0)))).toEqual([]);
    expect(await where(from(VF[1]!, mac(2)))).toEqual([{ port: VF[2], vlans: [] }]);
    await install(translateLegacy({ ports, vfs, uplinkUp: true, pfMac: PF_MAC }));
    expect(await where(from(VF[0]!, mac(1)))).toEqual([{ port: VF[1], vlans: [] }]);
  });

  it('vlan 0 qos Q tags with a priority tag (VID 0) and receives only priority-tagged frames', async () => {
    const vfs = [settings(0, { qos: 5 }), settings(1), settings(2), settings(3), settings(4)];
    await install(translateLegacy({ ports, vfs, uplinkUp: true, pfMac: PF_MAC }));
    expect(await where(from(VF[0]!, UNKNOWN))).toEqual([{ port: U, vlans: [q(0, 5)] }]);
    expect(await where(from(U, mac(0), [q(0, 1)]))).toEqual([{ port: VF[0], vlans: [] }]);
    expect(await where(from(U, mac(0)))).toEqual([]);
  });

  it('a VF with a zero MAC gets broadcast but no unicast', async () => {
    const vfs = [settings(0, { mac: '00:00:00:00:00:00' }), settings(1), settings(2), settings(3), settings(4)];
    await install(translateLegacy({ ports, vfs, uplinkUp: true, pfMac: PF_MAC }));
    expect((await where(from(U, BCAST))).map((o) => o.port)).toContain(VF[0]);
    expect(await where(from(U, '00:00:00:00:00:00'))).toEqual([]);
  });

  it('max_tx_rate runs what the VF sends through its meter', async () => {
    const vfs = [settings(0, { maxTxRate: 100 }), settings(1), settings(2), settings(3), settings(4)];
    const t = translateLegacy({ ports, vfs, uplinkUp: true, pfMac: PF_MAC });
    await install(t);
    expect(await ovs.ofctl('dump-meters', BR)).toMatch(/meter=65536 kbps burst stats bands=\s*type=drop rate=100000 burst_size=10000/);
    expect((await trace(from(VF[0]!, UNKNOWN))).metered).toBe(true);
    expect((await trace(from(VF[1]!, UNKNOWN))).metered).toBe(false);
  });

  it('spoofed and foreign-VLAN frames are counted on the VF drop cookies (tx_dropped / rx_dropped)', async () => {
    const vfs = [settings(0, { spoofchk: true, vlan: 10 }), settings(1), settings(2), settings(3), settings(4)];
    const t = translateLegacy({ ports, vfs, uplinkUp: true, pfMac: PF_MAC });
    await install(t);
    const frame = (src: string, dst: string) => `${dst.replaceAll(':', '')}${src.replaceAll(':', '')}88b5${'00'.repeat(46)}`;
    const send = (inPort: number, hex: string) => ovs.ofctl('packet-out', BR, `in_port=${inPort} packet=${hex} actions=table`);
    for (let i = 0; i < 3; i++) await send(VF[0]!, frame('02:66:66:66:66:66', BCAST));
    await send(VF[0]!, frame(mac(0), BCAST));
    for (let i = 0; i < 2; i++) await send(U, frame(OUTSIDE, BCAST)); // untagged: not VF0's VLAN
    const dump = await ovs.ofctl('dump-flows', BR);
    const packets = (c: bigint) => Number(new RegExp(`cookie=0x${c.toString(16)},.*?n_packets=(\\d+)`).exec(dump)?.[1] ?? NaN);
    const [tx] = t.perVf[0]!.txDropCookies, [rx] = t.perVf[0]!.rxDropCookies;
    expect(packets(tx!)).toBe(3);
    expect(packets(rx!)).toBe(2);
  });
});

// A reference legacy switch, written from docs/legacy.md rather than from the flows.
function reference(inp: LegacyInput, f: Frame): Out[] {
  const s = (n: number) => inp.vfs[n] ?? defaultVfSettings();
  const up = (n: number) => s(n).linkState === 'enable' || (s(n).linkState === 'auto' && inp.uplinkUp);
  const vst = (n: number) => s(n).vlan !== 0 || s(n).qos !== 0;
  let vlans = f.vlans;
  const vf = VF.indexOf(f.inPort);
  if (vf >= 0) {
    if (!up(vf)) return [];
    if (s(vf).spoofchk && f.src !== s(vf).mac) return [];
    if (vst(vf)) {
      if (s(vf).vlanProto === VLAN_PROTO_8021Q && vlans.length) return [];
      vlans = [{ tpid: s(vf).vlanProto, vid: s(vf).vlan, pcp: s(vf).qos }, ...vlans];
      // OVS keeps at most two parsed tags (FLOW_MAX_VLAN_HEADERS): with vlan-limit 2 a third push drops the innermost.
      if (vlanLimit === 2) vlans = vlans.slice(0, 2);
    }
  } else if (f.inPort !== U && f.inPort !== PF) return [];
  const unicastMac = (m: string | undefined) => m !== undefined && m !== '00:00:00:00:00:00';
  let dests: number[];
  if (parseInt(f.dst.slice(0, 2), 16) & 1) dests = [U, PF, ...VF];
  else {
    const owners = [...(unicastMac(inp.pfMac) && inp.pfMac === f.dst ? [PF] : []), ...VF.filter((_, n) => unicastMac(s(n).mac) && s(n).mac === f.dst)];
    if (owners.length) dests = owners;
    else if (f.inPort === U) dests = VF.filter((_, n) => s(n).trust && s(n).promisc);
    else dests = [U];
  }
  const outs: Out[] = [];
  for (const d of dests) {
    if (d === f.inPort) continue;
    const n = VF.indexOf(d);
    if (n < 0) outs.push({ port: d, vlans });
    else if (!up(n)) continue;
    else if (!vst(n)) outs.push({ port: d, vlans });
    else if (vlans.length && vlans[0]!.vid === s(n).vlan) outs.push({ port: d, vlans: vlans.slice(1) });
  }
  return sorted(outs);
}

describe('legacy eswitch on Open vSwitch agrees with a reference switch', () => {
  const NVF = 5;
  const macPool = [mac(0), mac(1), mac(2), '00:00:00:00:00:00'];
  const arbVf = fc.record({
    mac: fc.constantFrom(...macPool),
    vlan: fc.constantFrom(0, 0, 10, 20),
    qos: fc.constantFrom(0, 0, 3),
    vlanProto: fc.constantFrom(VLAN_PROTO_8021Q, VLAN_PROTO_8021Q, VLAN_PROTO_8021AD),
    spoofchk: fc.boolean(),
    trust: fc.boolean(),
    linkState: fc.constantFrom('auto' as const, 'enable' as const, 'enable' as const, 'disable' as const),
    maxTxRate: fc.constantFrom(0, 0, 50),
    minTxRate: fc.constant(0),
    rssQuery: fc.constant(false),
    promisc: fc.boolean(),
    allmulti: fc.boolean(),
  });
  const arbTag = fc.record({ tpid: fc.constantFrom(VLAN_PROTO_8021Q, VLAN_PROTO_8021AD), vid: fc.constantFrom(0, 10, 20, 30), pcp: fc.integer({ min: 0, max: 7 }) });
  const arbFrame = fc.record({
    inPort: fc.constantFrom(U, PF, ...VF, REP[0]!),
    src: fc.constantFrom(...macPool.slice(0, 3), OUTSIDE, PF_MAC),
    dst: fc.constantFrom(...macPool.slice(0, 3), PF_MAC, BCAST, MCAST, UNKNOWN),
    // Two tags: an S-tag over a C-tag, as on a QinQ wire.
    vlans: fc.oneof(fc.constant([] as Tag[]), arbTag.map((t) => [t]), fc.tuple(arbTag, arbTag).map(([a, b]) => [{ ...a, tpid: VLAN_PROTO_8021AD }, { ...b, tpid: VLAN_PROTO_8021Q }])),
  });
  const SETTINGS = Number(process.env.VPF_LEGACY_RUNS ?? 60);
  const FRAMES = 8;

  it.each([1, 2])(`${SETTINGS} random VF settings x ${FRAMES} frames, vlan-limit=%i`, async (limit) => {
    await setVlanLimit(limit);
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(arbVf, { minLength: NVF, maxLength: NVF }), fc.boolean(), fc.constantFrom(PF_MAC, undefined), fc.array(arbFrame, { minLength: FRAMES, maxLength: FRAMES }), async (vfs, uplinkUp, pfMac, frames) => {
        const inp: LegacyInput = { ports, vfs, uplinkUp, ...(pfMac ? { pfMac } : {}) };
        const t = translateLegacy(inp);
        await install(t);
        for (const f of frames) {
          const want = reference(inp, f);
          const got = await trace(f);
          cases++;
          if (JSON.stringify(sorted(got.outs)) !== JSON.stringify(want)) {
            expect.fail(
              [
                `settings: ${JSON.stringify(vfs)}`,
                `uplinkUp ${uplinkUp} pfMac ${pfMac}`,
                `frame: ${JSON.stringify(f)}`,
                `reference: ${JSON.stringify(want)}`,
                `ovs:       ${JSON.stringify(sorted(got.outs))}`,
                got.raw,
              ].join('\n'),
            );
          }
        }
      }),
      { numRuns: SETTINGS, ...(process.env.VPF_SEED ? { seed: Number(process.env.VPF_SEED) } : {}) },
    );
    expect(cases).toBe(SETTINGS * FRAMES);
    await setVlanLimit(1);
  }, 600_000);
});
