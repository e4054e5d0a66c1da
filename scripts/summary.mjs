// Reads vitest's JSON report and prints the one line CI reads.
// A file that failed with no failed test in it (a broken import, a beforeAll that
// threw and left its tests skipped) counts as one failure: it can't pass silently.
import { readFileSync } from 'node:fs';
let passed = 0, failed = 0, skipped = 0;
try {
  const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests;
  skipped = r.numPendingTests + (r.numTodoTests ?? 0);
  for (const f of r.testResults ?? []) {
    if (f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed')) failed += 1;
  }
} catch (e) {
  console.error(`summary: cannot read vitest report: ${e.message}`);
  failed += 1;
}
console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
process.exit(failed > 0 ? 1 : 0);
