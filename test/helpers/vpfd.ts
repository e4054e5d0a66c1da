// vpfd as a child process (the built binary), for tests that kill it.
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { adminRequest } from '../../agent/admin/client.js';
import type { PrivateOvs } from '../harness/ovs.js';

export function spawnVpfd(ovs: PrivateOvs, stateDir: string): ResultPromise {
  return execa('node', ['dist/bin/vpfd.js', '--state-dir', stateDir, '--ovsdb', `unix:${ovs.dbSock}`, '--ovs-rundir', ovs.rundir, '--datapath', 'netdev', '--log-level', 'warn'], { reject: false });
}

/** Resolves true once the admin API answers, false after `timeoutMs`. */
export async function vpfdReady(stateDir: string, timeoutMs = 10_000): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < timeoutMs; ) {
    try {
      await adminRequest(join(stateDir, 'vpfd.sock'), 'GET', '/vms');
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return false;
}
