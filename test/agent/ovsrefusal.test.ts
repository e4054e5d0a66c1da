// A flow Open vSwitch refuses takes only its own rule out of hardware
// (agent/flowsync.ts): OVS's error names the flow, the cookie names the rule.
// The VM's other rules stay offloaded, a skip_sw filter is refused to the
// guest with OVS's reason (as a NIC refuses one it cannot hold), a restart of
// vpfd brings the VM up the same way, and an ovs-vswitchd restart asks again.
// Real OVS, the real installers; the refusals are OVS's own: the bridge is
// handed each meter with a band it does not support (dscp_remark), so OVS
// refuses the meter mod, then every flow naming the meter
// (OFPMMFC_INVALID_METER).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../agent/journal.js';
import type { VmRecord } from '../../agent/records.js';
import { Metrics } from '../../agent/metrics.js';
import { VmState } from '../../agent/vm.js';
import { OfctlInstaller, type FlowInstaller } from '../../ovs/ctl/ofctl.js';
import { NativeInstaller } from '../../ovs/openflow/native.js';
import type { OfMeter } from '../../ovs/openflow/flow.js';
import { Errno } from '../../rules/errors.js';
import { decodeFilterDump, encodeFilterRequest, encodeFilterSelect } from '../../rules/netlink/tc.js';
import { NlmF, parseError, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { cookieKind, cookieRuleId, FlowKind } from '../../translator/cookie.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { addTestBridge, startOvs, type PrivateOvs } from '../harness/ovs.js';
import { exchange } from '../helpers/channel.js';

const BR = 'brr';
let ovs: PrivateOvs;
let dir: string;
let journal: Journal;
let vm: VmState | undefined;
let sock = '';
let seq = 1;
/** While set, OVS refuses every meter (and so every flow naming one). */
let metersRefused = true;
let native: NativeInstaller;
const metrics = new Metrics();

const bridge = (): FlowInstaller => {
  native = new NativeInstaller(`unix:${ovs.mgmt(BR)}`, new OfctlInstaller(`unix:${ovs.mgmt(BR)}`, ovs.env));
  return {
    dump: () => native.dump(),
    apply: (d) => native.apply(d),
    putMeters: (m: OfMeter[]) => native.putMeters(metersRefused ? m.map((x) => ({ ...x, spec: x.spec.replace('type=drop', 'type=dscp_remark prec_level=1') })) : m),
    pruneMeters: (keep) => native.pruneMeters(keep),
    portStats: () => native.portStats(),
    meterStats: () => native.meterStats(),
  };
};

const rec = (): VmRecord => ({ name: 'r', vfs: 2, ports: defaultPortMap(2), attach: {}, rules: [], nextRuleId: 1, zoneBase: 0, layout: [] });

async function start(r: VmRecord): Promise<void> {
  vm = new VmState(r, BR, bridge(), journal, { rulesPerVm: 100, flowsPerVm: 10_000, msgsPerSec: 1e6 }, metrics, pino({ level: process.env.LOGL ?? 'silent' }));
  sock = join(dir, `v${seq++}.sock`);
  await vm.listen(sock, `${sock}.genl`);
}

async function stop(): Promise<void> {
  vm?.close();
  await native?.close();
  vm = undefined;
}

const one = (msg: Buffer): Promise<NlMessage[]> => exchange(sock, [msg]);

/** `tc filter add <line>`: the errno and extack it gets. */
async function add(line: string): Promise<{ errno: number; extack?: string }> {
  const r = parseFilter(splitArgs(line));
  if (!r.ok) throw new Error(r.error.message);
  const got = await one(encodeFilterRequest(r.value, { seq: seq++, pid: 7 }));
  expect(got).toHaveLength(1);
  const { errno, message } = parseError(got[0]!);
  return { errno, ...(message ? { extack: message } : {}) };
}

/** `tc filter show dev vf0 ingress`: prio and in_hw of each filter. */
async function show(): Promise<{ prio: number; inHw: boolean }[]> {
  const r = await one(encodeFilterSelect('get', { dev: 'vf0', direction: 'ingress', chain: undefined, prio: 0, protocol: 0, handle: 0, kind: undefined }, { flags: NlmF.REQUEST | NlmF.DUMP, seq: seq++, pid: 7 }));
  return r.filter((m) => m.type === 44).flatMap((m) => {
    const d = decodeFilterDump(m);
    return d.ok && d.value.rule.actions.length ? [{ prio: d.value.rule.prio, inHw: d.value.stats.inHw }] : [];
  });
}

/** The rule ids of the bridge's flows, by kind (what OVS holds). */
async function flowsByRule(): Promise<{ rule: number[]; trap: number[] }> {
  const cookies = (await native.dump()).map((f) => f.cookie);
  const ids = (k: number) => [...new Set(cookies.filter((c) => cookieKind(c) === k).map(cookieRuleId))].sort();
  return { rule: ids(FlowKind.RULE), trap: ids(FlowKind.TRAP) };
}

const POLICED = 'dev vf0 ingress prio 2 protocol ip flower dst_ip 10.0.0.2 action police rate 1mbit burst 10k conform-exceed drop/pipe action mirred egress redirect dev vf1';

beforeAll(async () => {
  ovs = await startOvs();
  await addTestBridge(ovs, BR);
}, 60_000);
afterAll(async () => ovs?.stop());

beforeEach(async () => {
  metersRefused = true;
  dir = mkdtempSync(join(tmpdir(), 'vpf-ovsrefusal-'));
  journal = new Journal(join(dir, 'j'));
  const r = rec();
  journal.save(r);
  await start(r);
});
afterEach(async () => {
  await stop();
  journal.close();
  rmSync(dir, { recursive: true, force: true });
  await ovs.ofctl('del-flows', BR);
});

describe('a flow OVS refuses', () => {
  it('takes only its rule out of hardware: the guest sees it not_in_hw, the rules before and after it stay in_hw', async () => {
    expect(await add('dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 action drop')).toEqual({ errno: 0 });
    // The police's meter is not on the bridge: OVS refuses the flow that names it, and the rule is trapped instead.
    expect(await add(POLICED)).toEqual({ errno: 0 });
    expect(await add('dev vf0 ingress prio 3 protocol ip flower dst_ip 10.0.0.3 action drop')).toEqual({ errno: 0 });
    expect(await show()).toEqual([
      { prio: 1, inHw: true },
      { prio: 2, inHw: false },
      { prio: 3, inHw: true },
    ]);
    // On the bridge: the first and third rules' flows, and the second's trap (its packets go to the guest's software).
    expect(await flowsByRule()).toEqual({ rule: [1, 3], trap: [2] });
    expect(metrics.render()).toMatch(/vpf_rules_refused_by_ovs_total\{vm="r"\} [1-9]/);
  });

  it('refuses a skip_sw filter to the guest with the reason, and keeps nothing of it (nor on disk)', async () => {
    expect(await add('dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 action drop')).toEqual({ errno: 0 });
    const r = await add(POLICED.replace(' flower ', ' flower skip_sw '));
    expect(r.errno).toBe(Errno.EOPNOTSUPP);
    expect(r.extack).toMatch(/Open vSwitch refused this filter's flow \(OFPMMFC_INVALID_METER\)/);
    expect(await show()).toEqual([{ prio: 1, inHw: true }]);
    expect(await flowsByRule()).toEqual({ rule: [1], trap: [] });
    // The VM takes further changes.
    expect(await add('dev vf0 ingress prio 3 protocol ip flower dst_ip 10.0.0.3 action drop')).toEqual({ errno: 0 });
    expect(await show()).toEqual([{ prio: 1, inHw: true }, { prio: 3, inHw: true }]);
    // A vpfd restart finds the journal without it.
    await stop();
    const back = journal.loadAll().find((x) => x.name === 'r')!;
    expect(back.rules.map((e) => e.rule.prio)).toEqual([1, 3]);
  });

  it('a restart of vpfd brings the VM up with the same split; an ovs-vswitchd that now takes the meter gets the rule back', async () => {
    expect(await add('dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 action drop')).toEqual({ errno: 0 });
    expect(await add(POLICED)).toEqual({ errno: 0 });
    await stop();
    await ovs.ofctl('del-flows', BR);
    await start(journal.loadAll().find((x) => x.name === 'r')!);
    await vm!.reconcile('start');
    expect(await show()).toEqual([{ prio: 1, inHw: true }, { prio: 2, inHw: false }]);
    expect(await flowsByRule()).toEqual({ rule: [1], trap: [2] });
    metersRefused = false;
    vm!.ovsRestarted();
    await vm!.reconcile('ovs-vswitchd restart');
    expect(await show()).toEqual([{ prio: 1, inHw: true }, { prio: 2, inHw: true }]);
    expect(await flowsByRule()).toEqual({ rule: [1, 2], trap: [] });
  });
});
