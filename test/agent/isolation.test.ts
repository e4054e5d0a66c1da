// One VM never takes the others down (issue 9 item 11): VMs whose names share a
// prefix get distinct OVS names; a VM that cannot come up, at add or at restart
// from the journal, is reported with its cause while vpfd and every other VM run,
// and it is retried until it comes up. Real vpfd (dist/) against real OVS.
import { execa, type ResultPromise } from 'execa';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest, AdminClientError } from '../../agent/admin/client.js';
import { talk } from '../../agent/ctl/channel.js';
import type { VmInfo } from '../../agent/admin/api.js';
import type { FlowerRule } from '../../rules/model.js';
import { parseError } from '../../rules/netlink/nlmsg.js';
import { encodeFilterRequest } from '../../rules/netlink/tc.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { startOvs, type PrivateOvs } from '../harness/ovs.js';
import { vpfdReady } from '../helpers/vpfd.js';

let ovs: PrivateOvs;
let state: string;
let vpfd: ResultPromise | undefined;

/** vpfd with a short reconcile interval, so a failed VM is retried within the test. */
function start(): ResultPromise {
  return execa('node', ['dist/bin/vpfd.js', '--state-dir', state, '--ovsdb', `unix:${ovs.dbSock}`, '--ovs-rundir', ovs.rundir, '--datapath', 'netdev', '--log-level', 'warn', '--reconcile-interval-ms', '2000'], { reject: false });
}
async function stop(): Promise<void> {
  vpfd?.kill('SIGTERM');
  await vpfd;
  vpfd = undefined;
}
const api = <T>(method: string, path: string, body?: unknown) => adminRequest<T>(join(state, 'vpfd.sock'), method, path, body);
const list = () => api<VmInfo[]>('GET', '/vms');
const states = async () => Object.fromEntries((await list()).map((v) => [v.name, v.state]));
/** The guest's view: a filter add on the VM's channel is acknowledged (each a key of its own: the same one again is EEXIST). */
let probes = 0;
async function guestWorks(vm: string): Promise<boolean> {
  const r = (parseFilter(splitArgs(`dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port ${++probes} action drop`)) as { value: FlowerRule }).value;
  const replies = await talk(join(state, 'vms', `${vm}.sock`), encodeFilterRequest(r));
  return parseError(replies.at(-1)!).errno === 0;
}
/** Makes the VM's channel socket path unusable (a non-empty directory): its bring-up fails at listen. */
function block(vm: string): void {
  mkdirSync(join(state, 'vms', `${vm}.sock`, 'x'), { recursive: true });
}
const unblock = (vm: string) => rmSync(join(state, 'vms', `${vm}.sock`), { recursive: true, force: true });

beforeAll(async () => {
  ovs = await startOvs();
  state = mkdtempSync(join(tmpdir(), 'vpf-iso-'));
}, 60_000);
afterAll(async () => {
  await stop();
  await ovs?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe('VM isolation in vpfd', () => {
  it('VMs whose names share a prefix get distinct bridge and port names (at most 15 characters), human names in external_ids', async () => {
    vpfd = start();
    expect(await vpfdReady(state)).toBe(true);
    const long = 'tenant-production-00000000000001';
    for (const name of ['tenant1', 'tenant2', long, long.replace(/1$/, '2')]) await api('POST', '/vms', { name, vfs: 2 });
    expect(await states()).toEqual({ tenant1: 'up', tenant2: 'up', [long]: 'up', [long.replace(/1$/, '2')]: 'up' });
    const ports = (await ovs.vsctl('--bare', '--columns=name', 'list', 'Interface')).split('\n').filter(Boolean);
    expect(new Set(ports).size).toBe(ports.length);
    expect(ports.filter((p) => p.startsWith('v')).length).toBeGreaterThanOrEqual(4 * 6);
    expect(ports.every((p) => p.length <= 15)).toBe(true);
    const ids = await ovs.vsctl('--bare', '--columns=external_ids', 'find', 'Interface', 'external_ids:vpf-vm=tenant2');
    expect(ids).toContain('vpf-port=vf1rep');
    for (const vm of ['tenant1', 'tenant2']) expect(await guestWorks(vm)).toBe(true);
  }, 60_000);

  it('a VM that fails at add is refused with its cause and leaves nothing; the others keep running', async () => {
    block('blocked');
    const err = await api('POST', '/vms', { name: 'blocked', vfs: 1 }).catch((e: AdminClientError) => e);
    expect(err).toBeInstanceOf(AdminClientError);
    expect((err as AdminClientError).message).toMatch(/blocked\.sock/);
    expect(Object.keys(await states())).not.toContain('blocked');
    expect(await ovs.vsctl('list-br')).not.toMatch(/vpf-blocked/);
    unblock('blocked');
    await api('POST', '/vms', { name: 'blocked', vfs: 1 });
    await api('DELETE', '/vms/blocked');
    expect(await guestWorks('tenant1')).toBe(true);
  }, 60_000);

  it('after a restart, a VM that cannot come up is listed as failed with its cause, every other VM runs, and it is retried', async () => {
    await api('POST', '/vms', { name: 'broken', vfs: 1 });
    await stop();
    block('broken');
    vpfd = start();
    expect(await vpfdReady(state)).toBe(true);
    const broken = (await list()).find((v) => v.name === 'broken')!;
    expect(broken).toMatchObject({ state: 'failed', error: expect.stringMatching(/broken\.sock/) });
    expect(await states()).toMatchObject({ tenant1: 'up', tenant2: 'up' });
    for (const vm of ['tenant1', 'tenant2']) expect(await guestWorks(vm)).toBe(true);
    expect(vpfd.exitCode).toBeNull();
    // Fixed by the operator: the timer brings it up.
    unblock('broken');
    for (const t0 = Date.now(); Date.now() - t0 < 20_000 && (await states()).broken !== 'up'; ) await new Promise((r) => setTimeout(r, 100));
    expect((await states()).broken).toBe('up');
    expect(await guestWorks('broken')).toBe(true);
  }, 60_000);

  it('a failed VM can be deleted', async () => {
    await stop();
    block('broken');
    vpfd = start();
    expect(await vpfdReady(state)).toBe(true);
    expect((await states()).broken).toBe('failed');
    await api('DELETE', '/vms/broken');
    expect(Object.keys(await states())).not.toContain('broken');
    expect(await ovs.vsctl('list-br')).not.toMatch(/vpf-broken/);
    unblock('broken');
  }, 60_000);
});
