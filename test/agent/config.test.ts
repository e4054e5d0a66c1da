// A mistyped offload setting must stop vpfd with a message naming the key, not be ignored.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromArgs, DEFAULT_CONFIG } from '../../agent/config.js';

const file = (json: unknown) => {
  const p = join(mkdtempSync(join(tmpdir(), 'vpf-cfg-')), 'vpfd.json');
  writeFileSync(p, JSON.stringify(json));
  return p;
};

describe('vpfd configuration', () => {
  it('reads the file, then lets flags override it', () => {
    const c = configFromArgs(['--config', file({ hwOffload: true, quotas: { rulesPerVm: 7 } }), '--datapath', 'netdev'], {});
    expect(c).toMatchObject({ hwOffload: true, datapathType: 'netdev', quotas: { ...DEFAULT_CONFIG.quotas, rulesPerVm: 7 } });
  });
  it('names an unknown key', () => {
    expect(() => configFromArgs(['--config', file({ hwoffload: true })], {})).toThrow('config: unknown key hwoffload');
  });
  it('names a key with a wrong type', () => {
    expect(() => configFromArgs(['--config', file({ quotas: { rulesPerVm: -1 } })], {})).toThrow('quotas.rulesPerVm: expected a positive integer');
    expect(() => configFromArgs(['--datapath', 'dpdk'], {})).toThrow('datapathType: expected "system" or "netdev"');
  });
});

describe('vpfd --help / --version (issue 9 item 13)', () => {
  const run = (...args: string[]) => execa('node', ['dist/bin/vpfd.js', ...args], { reject: false });

  it('--help prints the usage with every flag on stdout and exits 0, whatever else is on the line', async () => {
    for (const argv of [['--help'], ['-h'], ['--state-dir', '/nonexistent', '--help']]) {
      const r = await run(...argv);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/^usage: vpfd /);
      for (const flag of ['--config', '--state-dir', '--ovsdb', '--datapath', '--hw-offload', '--tc-policy', '--log-level']) expect(r.stdout).toContain(flag);
    }
  });

  it("--version prints package.json's version and exits 0", async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const r = await run('--version');
    expect([r.exitCode, r.stdout]).toEqual([0, `vpfd (vpf) ${version}`]);
  });

  it('a bad flag still exits 2 and points at --help', async () => {
    const r = await run('--bogus', 'x');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/unknown flag --bogus[\s\S]*--help/);
  });
});
