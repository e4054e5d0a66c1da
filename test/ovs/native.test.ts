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
import { flow, RARE_FORMS } from './support/forms.js';
import { arbVfSettings } from '../gen/vf.js';

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


describe('NativeInstaller installs what ovs-ofctl installs', () => {
  it('random rule sets, legacy VF settings and rare action forms, applied as successive diffs to two bridges, dump identically', async () => {
    const ruleSets = [
      ...fc.sample(fc.array(arbRule(), { minLength: 1, maxLength: 5 }), { numRuns: 60, seed: 1 }),
      ...fc.sample(arbRuleset(), { numRuns: 60, seed: 2 }),
    ];
    const vfSettings = fc.sample(
      fc.tuple(
        ...ports.vfs.map((_, n) => arbVfSettings([`02:00:00:00:00:0${n + 1}`, '00:00:00:00:00:00'])),
      ),
      { numRuns: 20, seed: 3 },
    );
    const steps: { flows: OfFlow[]; meters: OfMeter[] }[] = [
      ...ruleSets.map((rules) => translate({ rules: rules.map((rule, i) => ({ id: i + 1, rule })), ports })),
      ...vfSettings.map((vfs) => translateLegacy({ ports, vfs, uplinkUp: true, pfMac: '02:aa:00:00:00:01' })),
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
    // Every diff the translators made went the native way: the ovs-ofctl fallback is never reached from translator output
    // (a value OVS deems invalid goes natively too, and OVS refuses it as it refuses the printed line).
    expect(nativeA.counters.fallbackApplies).toBe(0);
    expect(nativeA.counters.nativeApplies).toBe(steps.length - refusedSteps);
  }, 300_000);
});


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
      // The refusal names the flow (its cookie names its rule: flowsync.ts takes that rule out of hardware).
      expect((e1 as InstallError).refused).toEqual({ code: 'OFPMMFC_INVALID_METER', cookie: 0x73n });
      expect(await flowsOf(C)).toEqual(before);
      // ovs-ofctl says the same in its own words (the installer for forms the native encoder lacks).
      const e3 = await new OfctlInstaller(`unix:${ovs.mgmt(C)}`, ovs.env).apply(noMeter).then(() => undefined, (e: unknown) => e);
      expect((e3 as InstallError).refused).toEqual({ code: 'OFPMMFC_INVALID_METER', cookie: 0x73n });
      expect(await flowsOf(C)).toEqual(before);
      // Refused when the add is decoded (the bundle never holds it): goto_table must go forward.
      const backwards: FlowDiff = { add: [...good, flow(5, 10, 0x74n, 'in_port=3', 'goto_table:1')], del: [0x77n] };
      const e2 = await inst.apply(backwards).then(() => undefined, (e: unknown) => e);
      expect(e2).toBeInstanceOf(InstallError);
      const of = (e2 as Error).cause as OpenFlowError;
      expect(of).toBeInstanceOf(OpenFlowError);
      expect(of.codeName).toBe('OFPBIC_BAD_TABLE_ID');
      expect((e2 as InstallError).refused).toEqual({ code: 'OFPBIC_BAD_TABLE_ID', cookie: 0x74n });
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
      // Output to a reserved port (65534 = LOCAL): no translator emits one, and the encoder leaves it to ovs-ofctl.
      const diff: FlowDiff = { add: [flow(0, 10, 0x81n, 'in_port=1', 'output:2'), flow(0, 11, 0x82n, 'in_port=1', 'output:65534')], del: [] };
      await inst.apply(diff);
      expect(inst.counters).toMatchObject({ nativeApplies: 0, fallbackApplies: 1 });
      expect(inst.lastFallback?.form).toBe('output reserved port');
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
