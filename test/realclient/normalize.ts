// What may honestly differ between a real kernel's answer and vpfd's, and
// nothing else (docs/testing.md lists these):
//  1. hardware state: the kernel run's dummies have no offload, vpfd's rules
//     are in hardware: `in_hw in_hw_count N` / `not_in_hw` become `<hw>`;
//  2. hardware counters: `Sent software|hardware ...` and `used_hw_stats T`
//     lines (sw_*, hw_*, used_hw_stats JSON keys) are dropped: tc prints them
//     only for actions whose stats came from a driver (mlx5: delayed);
//  3. time: `installed|used|firstused N sec` (JSON installed, last_used,
//     first_used, expires) become N / 0;
//  4. `skip_sw` filters: the kernel ran them without skip_sw (script.ts
//     kernelArgs), so the `skip_sw` flag is dropped from vpfd's answers in
//     that step's group.
import type { Answer } from './transcript.js';

export interface NormalizeOpts {
  /** The group's filter was added with skip_sw, which only vpfd ran. */
  dropSkipSw?: boolean;
  json?: boolean;
}

function text(s: string, o: NormalizeOpts): string {
  let t = s
    .replace(/\bin_hw in_hw_count \d+/g, '<hw>')
    .replace(/\bnot_in_hw\b/g, '<hw>')
    .replace(/\b(installed|used|firstused) \d+ sec/g, '$1 N sec')
    .split('\n')
    .filter((l) => !/^\s*Sent (software|hardware) \d+ bytes \d+ pkt/.test(l) && !/^\s*used_hw_stats \w+/.test(l))
    .join('\n');
  if (o.dropSkipSw) t = t.split('\n').filter((l) => l.trim() !== 'skip_sw').join('\n');
  return t;
}

const TIME_KEYS = new Set(['installed', 'last_used', 'first_used', 'expires']);
const HW_COUNTER_KEYS = new Set(['sw_bytes', 'sw_packets', 'hw_bytes', 'hw_packets', 'used_hw_stats']);

function json(v: unknown, o: NormalizeOpts): unknown {
  if (Array.isArray(v)) return v.map((x) => json(x, o));
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'in_hw' || k === 'not_in_hw') out.hw = '<hw>';
    else if (k === 'in_hw_count' || HW_COUNTER_KEYS.has(k)) continue;
    else if (k === 'skip_sw' && o.dropSkipSw) continue;
    else out[k] = TIME_KEYS.has(k) && typeof x === 'number' ? 0 : json(x, o);
  }
  return out;
}

/** The answer as compared; JSON stdout is re-serialized (or marked invalid, which never matches). */
export function normalize(a: Answer, o: NormalizeOpts = {}): Answer {
  let stdout = text(a.stdout, o);
  if (o.json && a.stdout.trim()) {
    try {
      stdout = JSON.stringify(json(JSON.parse(a.stdout), o), null, 1) + '\n';
    } catch (e) {
      stdout = `INVALID JSON (${(e as Error).message}):\n${a.stdout}`;
    }
  }
  return { rc: a.rc, stdout, stderr: text(a.stderr, o) };
}

/** One step as a reviewer reads it in a failure diff. */
export function render(tool: string, args: readonly string[], a: Answer): string {
  return [`$ ${tool} ${args.join(' ')}`, a.stdout.trimEnd(), a.stderr.trimEnd() && `stderr: ${a.stderr.trimEnd()}`, `exit ${a.rc}`].filter(Boolean).join('\n');
}
