// kill -9 vpfd while a guest is installing rules: after a restart, every rule
// the guest saw acknowledged is there, and the bridge holds exactly the desired
// flows (no duplicate, no stale one).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { talk } from '../../agent/ctl/channel.js';
import { adminRequest } from '../../agent/admin/client.js';
import { NlmsgType, parseError } from '../../rules/netlink/nlmsg.js';
import { encodeFilterRequest } from '../../rules/netlink/tc.js';
import type { FlowerRule } from '../../rules/model.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { parseDumpFlows } from '../../ovs/ctl/ofctl.js';
import type { RuleView } from '../../agent/admin/api.js';
import { startOvs, type PrivateOvs } from '../harness/ovs.js';
import { spawnVpfd, vpfdReady } from '../helpers/vpfd.js';

let ovs: PrivateOvs;
let state: string;
const rule = (i: number) => (parseFilter(splitArgs(`dev vf${i % 2} ingress prio ${1 + (i % 20)} protocol ip flower ip_proto udp dst_port ${i + 1} action drop`)) as { value: FlowerRule }).value;


beforeAll(async () => {
  ovs = await startOvs();
  state = mkdtempSync(join(tmpdir(), 'vpf-crash-'));
}, 60_000);
afterAll(async () => {
  await ovs?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe('vpfd crash safety', () => {
  it('loses no acknowledged rule and leaves no stale flow after kill -9', async () => {
    let d = spawnVpfd(ovs, state);
    expect(await vpfdReady(state)).toBe(true);
    await adminRequest(join(state, 'vpfd.sock'), 'POST', '/vms', { name: 'k', vfs: 2 });
    const channel = join(state, 'vms', 'k.sock');
    const acked: number[] = [];
    let killed = false;
    // Two guests' worth of requests in flight, and a kill in the middle of them.
    const sender = (async () => {
      for (let i = 0; i < 400 && !killed; i++) {
        try {
          const r = await talk(channel, encodeFilterRequest(rule(i), { seq: i }));
          const last = r.at(-1)!;
          if (last.type === NlmsgType.ERROR && parseError(last).errno === 0) acked.push(i);
        } catch {
          break; // the daemon is gone
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    d.kill('SIGKILL');
    killed = true;
    await d;
    await sender;
    expect(acked.length).toBeGreaterThan(0);

    d = spawnVpfd(ovs, state);
    expect(await vpfdReady(state)).toBe(true);
    const rules = await adminRequest<RuleView[]>(join(state, 'vpfd.sock'), 'GET', '/vms/k/rules');
    const kept = new Set(rules.map((r) => r.rule.match.dstPort!.value - 1));
    for (const i of acked) expect(kept.has(i)).toBe(true);
    // Installed == desired, by cookie: nothing twice, nothing left from the crash.
    const installed = parseDumpFlows(await ovs.ofctl('dump-flows', 'vpf-k'));
    const cookies = installed.map((f) => f.cookie);
    expect(new Set(cookies).size).toBe(cookies.length);
    const ruleFlows = installed.filter((f) => f.cookie >> 60n === 1n);
    expect(ruleFlows).toHaveLength(rules.length);
    d.kill('SIGTERM');
    await d;
  }, 120_000);
});
