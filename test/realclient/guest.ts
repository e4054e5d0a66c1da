// The tier's fixture: a private OVS, vpfd spawned as a process (as
// test/helpers/vpfd.ts does), one VM, and the real tools run against its
// channels through nlshim exactly as `vpfctl guest` runs them.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminRequest } from '../../agent/admin/client.js';
import { guestEnv } from '../../agent/ctl/guest.js';
import { startOvs, type PrivateOvs } from '../harness/ovs.js';
import { spawnVpfd, vpfdReady } from '../helpers/vpfd.js';
import type { Answer } from './transcript.js';

/** A tool that hangs (devlink waiting for an ACK that never comes) is killed after this. */
export const STEP_TIMEOUT_MS = 10_000;

export interface GuestVm {
  state: string;
  vm: string;
  run(tool: string, args: readonly string[]): Promise<Answer>;
  stop(): Promise<void>;
}

export async function startGuestVm(vm: string, vfs: number): Promise<GuestVm> {
  const ovs: PrivateOvs = await startOvs();
  const state = mkdtempSync(join(tmpdir(), 'vpf-realclient-'));
  const vpfd = spawnVpfd(ovs, state);
  if (!(await vpfdReady(state))) throw new Error(`vpfd did not start: ${(await vpfd.catch((e) => e)).stderr ?? ''}`);
  await adminRequest(join(state, 'vpfd.sock'), 'POST', '/vms', { name: vm, vfs });
  const env = guestEnv(state, vm);
  return {
    state,
    vm,
    async run(tool, args) {
      const r = await execa(tool, args, { env, reject: false, timeout: STEP_TIMEOUT_MS, stripFinalNewline: false, extendEnv: false });
      if (r.timedOut) return { rc: -1, stdout: r.stdout as string, stderr: `${r.stderr as string}(no answer within ${STEP_TIMEOUT_MS} ms: killed)` };
      return { rc: r.exitCode ?? -1, stdout: r.stdout as string, stderr: r.stderr as string };
    },
    async stop() {
      vpfd.kill('SIGTERM');
      await vpfd.catch(() => undefined);
      await ovs.stop();
      rmSync(state, { recursive: true, force: true });
    },
  };
}
