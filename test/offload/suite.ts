// One offload-tier run as a vitest suite: translate each case's rules, boot the
// VM once for all of them, judge every frame (check.ts), print the figures and
// assert per kind of set (the prefix of its name) that (a) each frame comes out
// where flower sends it and (b) each frame that meets offloaded rules or a
// miss is handled by dp:tc, unless nothing vpf could do would change that.
import { beforeAll, describe, expect, it } from 'vitest';
import type { PortMap } from '../../translator/portmap.js';
import { Share } from '../helpers/met.js';
import { judge, prepare, type Case, type Prepared, type Verdict } from './check.js';
import { runOffload, type KernelFlavor, type OffloadRun } from './harness.js';

export interface SuiteOptions {
  title: string;
  flavor: KernelFlavor;
  ports: PortMap;
  /** Kinds of set, by name prefix: each gets its own checks and summary line. */
  kinds: { prefix: string; label: string }[];
  cases: () => Case[];
  /** Extra figures printed after the summaries (issue 11's share). */
  figures?: (share: (pick: (name: string) => boolean) => Share) => string[];
  /** Printed with a failure: how to run the same sets again. */
  rerun: string;
}

/** Came out elsewhere than flower sends it. */
const wrong = (v: Verdict) => !v.skipped && !v.outputOk;
/** Met offloaded rules or a miss, yet not handled by dp:tc, where some flow form could have been. */
const missed = (v: Verdict) => !v.skipped && !v.beyond && v.mustOffload && !v.offloaded;

export function offloadSuite(o: SuiteOptions): void {
  let prepared: Prepared[];
  let run: OffloadRun;
  const verdicts = new Map<string, Verdict[]>();
  const pickKind = (prefix: string) => (n: string) => n.startsWith(prefix);
  /** The sets `pick` names, with their frames' verdicts. */
  const setsOf = (pick: (name: string) => boolean) => [...verdicts].filter(([n]) => pick(n));
  const framesOf = (pick: (name: string) => boolean) => setsOf(pick).flatMap(([, v]) => v);

  /**
   * Issue 11's figure on the datapath: of the frames that meet a rule (trapped
   * rules included), those a tc-offloaded datapath flow handled without a trap
   * to the guest's software; the others by cause (the translator's reason for
   * a trap, else what the datapath flow shows, marked when no flow form could
   * be offloaded on this OVS and kernel).
   */
  function metShare(pick: (name: string) => boolean): Share {
    const share = new Share();
    for (const v of framesOf(pick)) {
      if (!v.metRule) continue;
      const handled = v.offloaded && !v.trappedBy;
      share.add(handled, v.trappedBy ? `trapped: ${v.trappedBy}` : v.beyond ? `never offloaded here: ${v.beyond}` : v.cause);
    }
    return share;
  }

  /** One line: frames, the fraction dp:tc among frames that must be offloaded, the causes of the others. */
  function summary(what: string, pick: (name: string) => boolean): string {
    const all = framesOf(pick);
    const must = all.filter((v) => v.mustOffload && !v.skipped && !v.beyond);
    const beyond = all.filter((v) => v.mustOffload && !v.skipped && v.beyond);
    const off = must.filter((v) => v.offloaded).length;
    const causes = new Map<string, number>();
    for (const v of all.filter(missed)) causes.set(v.cause, (causes.get(v.cause) ?? 0) + 1);
    const wrongWhere = setsOf(pick).flatMap(([n, v]) => v.flatMap((x, i) => (wrong(x) ? [`${n} #${i + 1}`] : [])));
    const beyondWhy = new Map<string, number>();
    for (const v of beyond) beyondWhy.set(v.beyond!, (beyondWhy.get(v.beyond!) ?? 0) + 1);
    return (
      `offload ${what}: ${all.length} frames, ${off}/${must.length} (${must.length ? ((100 * off) / must.length).toFixed(1) : '-'}%) of those meeting offloaded rules or misses handled by dp:tc; ` +
      `${all.filter((v) => v.skipped).length} NAT-to-a-range frames not compared; ${beyond.length} frames no flow form offloads here (${[...beyondWhy].map(([c, n]) => `${n} ${c}`).join(', ') || 'none'}); ` +
      `${wrongWhere.length} wrong outputs${wrongWhere.length ? ` (${wrongWhere.join(', ')})` : ''}; not offloaded: ` +
      ([...causes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${n} ${c}`).join('; ') || 'none')
    );
  }

  beforeAll(async () => {
    prepared = o.cases().map((c) => prepare(c, o.ports));
    run = await runOffload(prepared.map((p) => p.set), { ports: o.ports, flavor: o.flavor });
    const kernel = { recirculation: o.flavor === 'skbext' };
    prepared.forEach((p, i) => verdicts.set(p.c.name, p.c.packets.map((_, n) => judge(p, run.sets[i]!, n, kernel))));
    for (const k of o.kinds) console.log(summary(k.label, pickKind(k.prefix)));
    for (const line of o.figures?.(metShare) ?? []) console.log(line);
    console.log(`offload tier: ${run.kernel}, ${run.ovsVersion}; ${prepared.length} sets, timing ${JSON.stringify(run.timing)}`);
  }, 2_400_000);

  describe(o.title, () => {
    it('loads every set', () => {
      const bad = run.sets.filter((s) => s.loadError).map((s) => `${s.name}: ${s.loadError}`);
      expect(bad).toEqual([]);
    });
    it(`boots the ${o.flavor} kernel`, () => {
      expect(run.kernel).toMatch(o.flavor === 'skbext' ? /-vpf-skbext$/ : /^\d+\.\d+\.\d+-\d+-amd64$/);
    });
    for (const k of o.kinds) {
      it(`${k.label} sets: each frame comes out where flower sends it`, () => {
        const bad = framesOf(pickKind(k.prefix)).filter(wrong);
        if (bad.length) expect.fail(`${bad.length} frames came out wrong; the first ones:\n${bad.slice(0, 3).map((b) => b.report).join('\n\n')}\n(${o.rerun})`);
      });
      it(`${k.label} sets: each frame that meets offloaded rules or a miss is handled by dp:tc`, () => {
        const bad = framesOf(pickKind(k.prefix)).filter(missed);
        if (bad.length) expect.fail(`${bad.length} frames not offloaded; the first:\n${bad[0]!.report}\n(${o.rerun})`);
      });
    }
  });
}
