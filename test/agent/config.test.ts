// A mistyped offload setting must stop vpfd with a message naming the key, not be ignored.
import { mkdtempSync, writeFileSync } from 'node:fs';
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
