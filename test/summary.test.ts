// The last line CI reads (scripts/summary.mjs): a run whose file broke before
// its tests could fail must not read "0 failed". The CI run of 2026-12-02 had
// a beforeAll throw, its 9 tests skipped, and the line said 0 failed.
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'vpf-summary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function summary(report: object): Promise<{ line: string; code: number }> {
  const file = join(dir, 'r.json');
  writeFileSync(file, JSON.stringify(report));
  const r = await execa('node', ['scripts/summary.mjs', file], { reject: false });
  return { line: r.stdout, code: r.exitCode ?? -1 };
}

const base = { numPassedTests: 3, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0 };
const ok = { status: 'passed', assertionResults: [{ status: 'passed' }] };

describe('scripts/summary.mjs', () => {
  it('counts passes and failures as vitest reports them', async () => {
    expect(await summary({ ...base, testResults: [ok] })).toEqual({ line: '3 passed, 0 failed', code: 0 });
    const failing = { status: 'failed', assertionResults: [{ status: 'failed' }] };
    expect(await summary({ ...base, numFailedTests: 1, testResults: [ok, failing] })).toEqual({ line: '3 passed, 1 failed', code: 1 });
  });

  it('counts a file that failed to load as one failure', async () => {
    expect(await summary({ ...base, testResults: [ok, { status: 'failed', assertionResults: [] }] })).toEqual({ line: '3 passed, 1 failed', code: 1 });
  });

  it('counts a file whose beforeAll threw, its tests skipped, as one failure', async () => {
    const skippedBySetup = { status: 'failed', assertionResults: [{ status: 'skipped' }, { status: 'skipped' }] };
    expect(await summary({ ...base, numPendingTests: 2, testResults: [ok, skippedBySetup] })).toEqual({ line: '3 passed, 1 failed, 2 skipped', code: 1 });
  });

  it('counts an unreadable report as a failure', async () => {
    const r = await execa('node', ['scripts/summary.mjs', join(dir, 'missing.json')], { reject: false });
    expect([r.stdout, r.exitCode]).toEqual(['0 passed, 1 failed', 1]);
  });
});
