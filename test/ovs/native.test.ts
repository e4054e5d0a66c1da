// NativeInstaller against a real Open vSwitch: what it installs must be what
// ovs-ofctl installs for the same diffs (dump-flows of two bridges compared),
// a bundle is atomic, a refusal surfaces as InstallError with the OpenFlow
// error, the commit reply means the flows are there, and an ovs-vswitchd
// restart costs one reconnect.
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultVfSettings, VLAN_PROTO_8021AD, VLAN_PROTO_8021Q } from '../../rules/vf.js';
import { InstallError, OfctlInstaller } from '../../ovs/ctl/ofctl.js';
import { diffInstalled, type FlowDiff } from '../../ovs/openflow/diff.js';
import type { OfFlow, OfMeter } from '../../ovs/openflow/flow.js';
import { OpenFlowError } from '../../ovs/openflow/conn.js';
import { NativeInstaller } from '../../ovs/openflow/native.js';
import { translate } from '../../translator/index.js';
import { translateLegacy } from '../../translator/legacy.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { addTestBridge, startOvs, type PrivateOvs } from '../harness/ovs.js';
import { arbRule } from '../gen/rule.js';
import { arbRuleset } from '../gen/ruleset.js';

const A = 'bra', B = 'brb', C = 'brc';
const ports = defaultPortMap(4);
let ovs: PrivateOvs;
let nativeA: NativeInstaller;
let ofctlB: OfctlInstaller;

/** dump-flows without counters and ages, sorted: what must agree between the two bridges. */
async function flowsOf(br: string): Promise<string[]> {
  const out = await ovs.ofctl('dump-flows', br);
  return out
    .split('\n')
    .filter((l) => l.includes('cookie='))
    .map((l) => l.trim().replace(/\b(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]+,?\s*/g, ''))
    .sort();
}

beforeAll(async () => {
  ovs = await startOvs();
  try {
    for (const br of [A, B, C]) await addTestBridge(ovs, br);
  } catch (e) {
    await ovs.stop();
    throw e;
  }
  nativeA = new NativeInstaller(`unix:${ovs.mgmt(A)}`, new OfctlInstaller(`unix:${ovs.mgmt(A)}`, ovs.env));
  ofctlB = new OfctlInstaller(`unix:${ovs.mgmt(B)}`, ovs.env);
}, 60_000);

afterAll(async () => {
  await nativeA?.close();
  await ovs?.stop();
});

const flow = (table: number, priority: number, cookie: bigint, match: string, actions: string): OfFlow => ({ table, priority, cookie, match, actions });

describe('NativeInstaller installs what ovs-ofctl installs', () => {
  it('random rule sets, legacy VF settings and rare action forms, applied as successive diffs to two bridges, dump identically', async () => {
    const ruleSets = [
      ...fc.sample(fc.array(arbRule(), { minLength: 1, maxLength: 5 }), { numRuns: 60, seed: 1 }),
      ...fc.sample(arbRuleset(), { numRuns: 60, seed: 2 }),
    ];
    const vfSettings = fc.sample(
      fc.tuple(
        ...ports.vfs.map((_, n) =>
          fc.record({
            mac: fc.constantFrom(`02:00:00:00:00:0${n + 1}`, '00:00:00:00:00:00'),
            vlan: fc.constantFrom(0, 10, 4095),
            qos: fc.integer({ min: 0, max: 7 }),
            vlanProto: fc.constantFrom(VLAN_PROTO_8021Q, VLAN_PROTO_8021AD),
            spoofchk: fc.boolean(),
            trust: fc.boolean(),
            promisc: fc.boolean(),
            linkState: fc.constantFrom('auto' as const, 'enable' as const, 'disable' as const),
            maxTxRate: fc.constantFrom(0, 100),
          }),
        ),
      ),
      { numRuns: 20, seed: 3 },
    );
    const steps: { flows: OfFlow[]; meters: OfMeter[] }[] = [
      ...ruleSets.map((rules) => translate({ rules: rules.map((rule, i) => ({ id: i + 1, rule })), ports })),
      ...vfSettings.map((vfs) => translateLegacy({ ports, vfs: vfs.map((v) => ({ ...defaultVfSettings(), ...v })), uplinkUp: true, pfMac: '02:aa:00:00:00:01' })),
      { flows: RARE_FORMS, meters: [{ id: 5, spec: 'kbps burst stats bands=type=drop rate=1000 burst_size=100' }] },
    ];
    let installed = new Set<bigint>();
    let flowsSent = 0, refusedSteps = 0;
    for (const [i, step] of steps.entries()) {
      const diff = diffInstalled(step.flows, installed);
      await nativeA.putMeters(step.meters);
      await ofctlB.putMeters(step.meters);
      const [a, b] = await Promise.allSettled([nativeA.apply(diff), ofctlB.apply(diff)]);
      // Some generated rules translate to flows OVS refuses (both ways); the bundle leaves both bridges as they were.
      expect(a.status, `step ${i}: native ${a.status}, ovs-ofctl ${b.status}: ${a.status === 'rejected' ? a.reason : b.status === 'rejected' ? b.reason : ''}`).toBe(b.status);
      if (a.status === 'rejected') {
        expect(a.reason).toBeInstanceOf(InstallError);
        refusedSteps++;
      } else {
        installed = diff.want;
        flowsSent += diff.add.length + diff.del.length;
      }
      expect(await flowsOf(A), `step ${i}`).toEqual(await flowsOf(B));
    }
    console.log(`equivalence: ${steps.length} diffs (${refusedSteps} refused by OVS both ways), ${flowsSent} flow mods; native applies ${nativeA.counters.nativeApplies}, fallback ${nativeA.counters.fallbackApplies}${nativeA.lastFallback ? ` (last: ${nativeA.lastFallback.form})` : ''}`);
    expect(flowsSent).toBeGreaterThan(1000);
    // Every diff the translators made and OVS took went the native way, but those with a translator-made invalid value.
    expect(nativeA.counters.nativeApplies).toBeGreaterThan(0.9 * (steps.length - refusedSteps));
  }, 300_000);
});

/** Action and match forms the translators emit that random rules rarely reach (pedit rewrites, NAT, mpls, sample, ...). */
const RARE_FORMS: OfFlow[] = [
  flow(3, 10, 0x501n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000,nw_proto=6', 'mod_dl_dst:02:00:00:00:00:09,mod_dl_src:02:00:00:00:00:0a,mod_nw_src:10.1.1.1,mod_nw_dst:10.2.2.2,set_field:5->tcp_src,set_field:80->tcp_dst,output:2'),
  flow(3, 11, 0x502n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000,nw_proto=17', 'set_field:53->udp_src,set_field:5353->udp_dst,set_field:10->ip_dscp,set_field:2->nw_ecn,mod_nw_ttl:9,output:2'),
  flow(3, 12, 0x503n, 'in_port=1,dl_type=0x86dd,vlan_tci=0x0000/0x1000', 'set_field:2001:db8::9->ipv6_src,set_field:2001:db8::10->ipv6_dst,dec_ttl,output:2'),
  flow(3, 13, 0x504n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000,nw_ttl=0', 'mod_nw_ttl:255,in_port'),
  flow(3, 14, 0x505n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'ct(commit,zone=5,nat(src=10.0.0.1-10.0.0.9:1000-2000),table=4)'),
  flow(3, 15, 0x506n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000,nw_proto=6', 'ct(commit,zone=5,nat(dst=10.0.0.1:80),table=4)'),
  flow(3, 16, 0x507n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'ct(zone=5,nat,table=4)'),
  flow(3, 17, 0x508n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'ct(commit,force,zone=5,nat(src),exec(set_field:0x1/0xff->ct_mark,set_field:0x5/0xff->ct_label),table=4)'),
  flow(3, 18, 0x509n, 'in_port=1,dl_type=0x86dd,vlan_tci=0x0000/0x1000', 'ct(commit,zone=6,nat(src=2001:db8::1-2001:db8::5),table=4)'),
  flow(3, 19, 0x50an, 'in_port=1', 'sample(probability=100,collector_set_id=7),output:2'),
  flow(3, 20, 0x50bn, 'in_port=1,dl_type=0x8847,mpls_label=5,mpls_tc=1,mpls_bos=1,mpls_ttl=64', 'pop_mpls:0x800,output:2'),
  flow(3, 21, 0x50cn, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'push_mpls:0x8847,set_field:7->mpls_label,set_field:1->mpls_tc,set_field:9->mpls_ttl,output:2'),
  flow(3, 22, 0x50dn, 'in_port=1,vlan_tci=0x1000/0x1000', 'pop_vlan,push_vlan:0x88a8,set_field:4196->vlan_vid,set_field:3->vlan_pcp,output:2'),
  flow(3, 23, 0x50en, 'reg0=5,reg1=0x10/0xf0', 'set_field:9->reg0,set_field:0x5/0xff->pkt_mark,resubmit(,4)'),
  flow(3, 24, 0x50fn, 'ct_state=+trk+new-inv,ct_zone=5,ct_mark=0x10/0xf0,ct_label=0x1/0x1', 'goto_table:5'),
  flow(3, 25, 0x510n, 'in_port=1', 'meter:5,push_vlan:0x8100,set_field:4106->vlan_vid,goto_table:4'),
  flow(3, 26, 0x511n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'ct_clear,clone(pop_vlan,output:3),output:2'),
];

describe('NativeInstaller: delete by cookie, atomicity, refusals', () => {
  const native = () => new NativeInstaller(`unix:${ovs.mgmt(C)}`, new OfctlInstaller(`unix:${ovs.mgmt(C)}`, ovs.env));

  it('a delete removes exactly the flows carrying that cookie, in every table', async () => {
    const inst = native();
    try {
      const c1 = 0x1000000100000001n, c2 = 0x1000000100000002n;
      await inst.apply({
        add: [
          flow(0, 10, c1, 'in_port=1', 'output:2'),
          flow(3, 10, c1, 'in_port=2', 'output:1'),
          flow(7, 5, c1, '', 'drop'),
          flow(0, 11, c2, 'in_port=3', 'output:2'),
          flow(3, 11, c2, 'in_port=4', 'output:1'),
        ],
        del: [],
      });
      expect((await flowsOf(C)).length).toBe(5);
      await inst.apply({ add: [], del: [c1] });
      const left = await flowsOf(C);
      expect(left).toHaveLength(2);
      for (const l of left) expect(l).toContain(`cookie=0x${c2.toString(16)}`);
      await inst.apply({ add: [], del: [c2] });
      expect(await flowsOf(C)).toEqual([]);
      expect(inst.counters).toMatchObject({ nativeApplies: 3, fallbackApplies: 0 });
    } finally {
      await inst.close();
    }
  });

  it('a flow OVS refuses fails the whole bundle with the OpenFlow error, and installs nothing of it', async () => {
    const inst = native();
    try {
      await inst.apply({ add: [flow(0, 1, 0x77n, 'in_port=9', 'output:8')], del: [] });
      const before = await flowsOf(C);
      const good = [flow(0, 10, 0x71n, 'in_port=1', 'output:2'), flow(2, 10, 0x72n, 'in_port=2', 'output:1')];
      // Refused when the commit runs it (ofproto_flow_mod_start): the meter does not exist.
      const noMeter: FlowDiff = { add: [...good, flow(1, 10, 0x73n, 'in_port=3', 'meter:4242,output:1')], del: [0x77n] };
      const e1 = await inst.apply(noMeter).then(() => undefined, (e: unknown) => e);
      expect(e1).toBeInstanceOf(InstallError);
      expect((e1 as Error).cause).toBeInstanceOf(OpenFlowError);
      expect((e1 as Error).message).toMatch(/OFPMMFC_/);
      expect(await flowsOf(C)).toEqual(before);
      // Refused when the add is decoded (the bundle never holds it): goto_table must go forward.
      const backwards: FlowDiff = { add: [...good, flow(5, 10, 0x74n, 'in_port=3', 'goto_table:1')], del: [0x77n] };
      const e2 = await inst.apply(backwards).then(() => undefined, (e: unknown) => e);
      expect(e2).toBeInstanceOf(InstallError);
      const of = (e2 as Error).cause as OpenFlowError;
      expect(of).toBeInstanceOf(OpenFlowError);
      expect(of.codeName).toBe('OFPBIC_BAD_TABLE_ID');
      expect(await flowsOf(C)).toEqual(before);
      // The connection survives a refusal.
      await inst.apply({ add: good, del: [0x77n] });
      expect((await flowsOf(C)).map((l) => /cookie=(0x[0-9a-f]+)/.exec(l)![1])).toEqual(['0x71', '0x72']);
      await inst.apply({ add: [], del: [0x71n, 0x72n] });
    } finally {
      await inst.close();
    }
  });

  it('a diff with a flow outside the native vocabulary goes whole through ovs-ofctl', async () => {
    const inst = native();
    try {
      const diff: FlowDiff = { add: [flow(0, 10, 0x81n, 'in_port=1', 'output:2'), flow(0, 11, 0x82n, 'tcp,in_port=1', 'output:2')], del: [] };
      await inst.apply(diff);
      expect(inst.counters).toMatchObject({ nativeApplies: 0, fallbackApplies: 1 });
      expect(inst.lastFallback?.form).toBe("match 'tcp'");
      expect(await flowsOf(C)).toHaveLength(2);
      await inst.apply({ add: [], del: [0x81n, 0x82n] });
      expect(inst.counters.nativeApplies).toBe(1);
      expect(await flowsOf(C)).toEqual([]);
    } finally {
      await inst.close();
    }
  });

  it('the flows are in OVS when apply() resolves (the commit reply is the barrier)', async () => {
    const inst = native();
    try {
      const flows = Array.from({ length: 300 }, (_, i) => flow(1 + (i % 5), 100 + i, BigInt(0x9000 + i), `in_port=${1 + i},dl_type=0x800,nw_dst=10.0.${i >> 8}.${i & 255}`, `output:${2 + (i % 7)}`));
      await inst.apply({ add: flows, del: [] });
      expect(await flowsOf(C)).toHaveLength(300);
      await inst.apply({ add: [], del: flows.map((f) => f.cookie) });
      expect(await flowsOf(C)).toEqual([]);
    } finally {
      await inst.close();
    }
  });
});

describe('NativeInstaller across an ovs-vswitchd restart', () => {
  it('reconnects on the next apply and installs again', async () => {
    const inst = new NativeInstaller(`unix:${ovs.mgmt(C)}`, new OfctlInstaller(`unix:${ovs.mgmt(C)}`, ovs.env));
    try {
      await inst.apply({ add: [flow(0, 10, 0xa1n, 'in_port=1', 'output:2')], del: [] });
      await ovs.restartVswitchd();
      // The bridge's management socket comes back once ovs-vswitchd has read its configuration.
      for (let t = 0; !existsSync(ovs.mgmt(C)) && t < 200; t++) await new Promise((r) => setTimeout(r, 25));
      expect(await flowsOf(C)).toEqual([]);
      await inst.apply({ add: [flow(0, 10, 0xa2n, 'in_port=1', 'output:3')], del: [] });
      const after = await flowsOf(C);
      expect(after).toHaveLength(1);
      expect(after[0]).toContain('cookie=0xa2');
      expect(inst.counters.nativeApplies).toBe(2);
      await inst.apply({ add: [], del: [0xa2n] });
    } finally {
      await inst.close();
    }
  }, 60_000);
});

describe('cost per apply (reported, not asserted)', () => {
  it('a 4-flow diff: native bundle vs ovs-ofctl', async () => {
    const inst = new NativeInstaller(`unix:${ovs.mgmt(C)}`, new OfctlInstaller(`unix:${ovs.mgmt(C)}`, ovs.env));
    const ofctl = new OfctlInstaller(`unix:${ovs.mgmt(C)}`, ovs.env);
    const diffAt = (i: number): FlowDiff => ({
      add: Array.from({ length: 4 }, (_, k) => flow(1, 100 + k, BigInt(0xb0000 + i * 4 + k), `in_port=${1 + k},dl_type=0x800,nw_proto=6,tcp_dst=${1000 + i}`, `output:${10 + k}`)),
      del: i ? Array.from({ length: 4 }, (_, k) => BigInt(0xb0000 + (i - 1) * 4 + k)) : [],
    });
    const time = async (n: number, f: (i: number) => Promise<void>) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await f(i);
      return Number(process.hrtime.bigint() - t0) / 1e6 / n;
    };
    try {
      const nativeMs = await time(200, (i) => inst.apply(diffAt(i)));
      await inst.apply({ add: [], del: diffAt(200).del });
      const ofctlMs = await time(20, (i) => ofctl.apply(diffAt(i)));
      await ofctl.apply({ add: [], del: diffAt(20).del });
      console.log(`4-flow diff (4 deletes + 4 adds after the first): native ${nativeMs.toFixed(2)} ms/apply, ovs-ofctl ${ofctlMs.toFixed(2)} ms/apply`);
      expect(await flowsOf(C)).toEqual([]);
    } finally {
      await inst.close();
    }
  }, 120_000);
});
