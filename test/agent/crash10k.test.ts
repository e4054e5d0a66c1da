// kill -9 vpfd in the middle of installing a 10k-rule VM in one bundle (a
// restart resync): the next start finds OVS in whatever state the bundle left
// and converges to exactly the desired flows, no duplicate, no stale one.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../agent/journal.js';
import type { FlowerRule } from '../../rules/model.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { parseDumpFlows } from '../../ovs/ctl/ofctl.js';
import { translate } from '../../translator/index.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { startOvs, type PrivateOvs } from '../harness/ovs.js';
import { spawnVpfd, vpfdReady } from '../helpers/vpfd.js';

const N = 10_000;
let ovs: PrivateOvs;
let state: string;
const rule = (i: number) => (parseFilter(splitArgs(`dev vf${i % 2} ingress prio ${1 + (i % 20)} protocol ip flower ip_proto udp dst_ip 10.${(i >> 8) & 255}.${i & 255}.1 dst_port ${1 + i} action drop`)) as { value: FlowerRule }).value;

beforeAll(async () => {
  ovs = await startOvs();
  state = mkdtempSync(join(tmpdir(), 'vpf-crash10k-'));
}, 60_000);
afterAll(async () => {
  await ovs?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe('vpfd crash during a big bundle', () => {
  it(`converges after kill -9 while installing ${N} rules`, async () => {
    // A VM whose journal holds 10k acknowledged rules, none of them in OVS yet.
    mkdirSync(join(state, 'journal'), { recursive: true });
    const rules = Array.from({ length: N }, (_, i) => ({ id: i + 1, rule: rule(i), installedAt: Date.now() }));
    new Journal(join(state, 'journal')).save({ name: 'big', vfs: 2, ports: defaultPortMap(2), attach: {}, rules, nextRuleId: N + 1, zoneBase: 256, layout: [] });
    let d = spawnVpfd(ovs, state);
    // The bundle is atomic, so flows show up all at once: kill once the bridge exists, while the
    // 10k rules are being translated and streamed to ovs-ofctl (which may still commit after we die).
    for (let i = 0; i < 400 && !(await ovs.vsctl('list-br')).includes('vpf-big'); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 150));
    d.kill('SIGKILL');
    await d;
    const atKill = await ovs.ofctl('dump-aggregate', 'vpf-big').then((o) => Number(/flow_count=(\d+)/.exec(o)?.[1] ?? 0));
    expect(atKill).toBeLessThan(N); // the kill landed before the install finished

    d = spawnVpfd(ovs, state);
    expect(await vpfdReady(state, 120_000)).toBe(true);
    const want = translate({ rules: rules.map(({ id, rule: r }) => ({ id, rule: r })), ports: defaultPortMap(2), zone: (z) => 256 + (z & 0xff) }).flows.map((f) => f.cookie).sort();
    const got = parseDumpFlows(await ovs.ofctl('dump-flows', 'vpf-big')).map((f) => f.cookie).sort();
    expect(got.length).toBe(want.length);
    expect(got).toEqual(want);
    d.kill('SIGTERM');
    await d;
  }, 300_000);
});
