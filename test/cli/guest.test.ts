// vpfctl shows what the guest sees: `guest`, `tc`, `vf` and `eswitch` run the
// real tc/ip/devlink through nlshim against a spawned vpfd, so their output is
// the tools' own (compared here with the same tool run directly through
// nlshim); and every command answers --help and --version.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGuestVm, type GuestVm } from '../realclient/guest.js';
import { normalize } from '../realclient/normalize.js';

const bin = 'dist/bin/vpfctl.js';
let g: GuestVm;
const vpfctl = (...args: string[]) => execa('node', [bin, '--state-dir', g.state, ...args], { reject: false, timeout: 20_000 });

beforeAll(async () => {
  g = await startGuestVm('cli', 2);
}, 120_000);
afterAll(async () => g?.stop());

describe('vpfctl runs the guest\'s own tools', () => {
  it('guest VM -- tc filter add/show: the real tc, its exit code and output', async () => {
    const add = await vpfctl('guest', 'cli', '--', 'tc', 'filter', 'add', 'dev', 'vf0', 'ingress', 'prio', '1', 'protocol', 'ip', 'flower', 'dst_ip', '10.0.0.1', 'action', 'drop');
    expect(add.stderr).toBe('');
    expect(add.exitCode).toBe(0);
    const shown = await vpfctl('guest', 'cli', '--', 'tc', 'filter', 'show', 'dev', 'vf0', 'ingress');
    expect(shown.stdout).toContain('  dst_ip 10.0.0.1');
    expect(shown.stdout + '\n').toBe((await g.run('tc', ['filter', 'show', 'dev', 'vf0', 'ingress'])).stdout);
  });

  it('tc VM ... is the same real tc (add, -s show, errors with tc\'s exit code)', async () => {
    expect((await vpfctl('tc', 'cli', 'filter', 'add', 'dev', 'vf1', 'ingress', 'prio', '2', 'protocol', 'ip', 'flower', 'ip_proto', 'udp', 'dst_port', '53', 'action', 'pass')).exitCode).toBe(0);
    const s = await vpfctl('tc', 'cli', '-s', 'filter', 'show', 'dev', 'vf1', 'ingress');
    // Two runs a moment apart: only the installed/used seconds may differ.
    const direct = await g.run('tc', ['-s', 'filter', 'show', 'dev', 'vf1', 'ingress']);
    expect(normalize({ rc: 0, stdout: s.stdout + '\n', stderr: '' }).stdout).toBe(normalize(direct).stdout);
    expect(s.stdout).toContain('  dst_port 53');
    const bad = await vpfctl('tc', 'cli', 'filter', 'add', 'dev', 'vf7', 'ingress', 'prio', '1', 'protocol', 'ip', 'flower', 'action', 'drop');
    expect(bad.stderr).toBe('Cannot find device "vf7"');
    expect(bad.exitCode).toBe(1);
  });

  it('vf VM show is `ip link show dev pf`; vf VM N ... is `ip link set dev pf vf N ...`', async () => {
    expect((await vpfctl('eswitch', 'cli', 'mode', 'legacy')).exitCode).toBe(0);
    const set = await vpfctl('vf', 'cli', '1', 'mac', '02:00:00:00:00:42', 'trust', 'on');
    expect(set.stderr).toBe('');
    expect(set.exitCode).toBe(0);
    const shown = await vpfctl('vf', 'cli', 'show');
    expect(shown.stdout).toMatch(/^ {4}vf 1 {5}link\/ether 02:00:00:00:00:42 .*trust on/m);
    expect(shown.stdout + '\n').toBe((await g.run('ip', ['link', 'show', 'dev', 'pf'])).stdout);
    const bad = await vpfctl('vf', 'cli', '1', 'vlan', '5000');
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr.trimEnd()).toBe((await g.run("ip", ["link", "set", "dev", "pf", "vf", "1", "vlan", "5000"])).stderr.trimEnd());
  });

  it('eswitch VM show is `devlink dev eswitch show` (and never hangs)', async () => {
    const r = await vpfctl('eswitch', 'cli', 'show');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^pci\/0000:00:00\.0: mode legacy/);
    expect(r.stdout + '\n').toBe((await g.run('devlink', ['dev', 'eswitch', 'show', 'pci/0000:00:00.0'])).stdout);
  });

  it('a VM without a channel is named as such', async () => {
    const r = await vpfctl('guest', 'nosuchvm', '--', 'tc', 'filter', 'show');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/no channel for VM nosuchvm/);
  });
});

describe('every vpfctl command answers --help and --version', () => {
  const names = ['rule', 'translate', 'vm', 'explain', 'guest', 'tc', 'vf', 'eswitch'];
  for (const name of names) {
    it(`${name} --help prints its usage on stdout, exit 0; --version too`, async () => {
      const h = await execa('node', [bin, name, '--help'], { reject: false });
      expect(h.exitCode).toBe(0);
      expect(h.stdout).toMatch(new RegExp(`^usage: vpfctl ${name} `));
      const v = await execa('node', [bin, name, '--version'], { reject: false });
      expect(v.exitCode).toBe(0);
      expect(v.stdout).toMatch(/^vpfctl \(vpf\) \d+\.\d+\.\d+$/);
    });
  }
  it('vpfctl --help lists every command; a missing command is a usage error (exit 2)', async () => {
    const h = await execa('node', [bin, '--help'], { reject: false });
    expect(h.exitCode).toBe(0);
    for (const name of names) expect(h.stdout).toContain(`vpfctl ${name} `);
    expect((await execa('node', [bin], { reject: false })).exitCode).toBe(2);
  });
  it('after `--` the words are the tool\'s: guest VM -- tc --help is not vpfctl\'s help', async () => {
    const r = await execa('node', [bin, 'guest', 'x', '--', 'tc', '--help'], { reject: false });
    expect(r.stdout).not.toMatch(/^usage: vpfctl/);
  });
});
