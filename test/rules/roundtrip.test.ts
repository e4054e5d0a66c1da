// Both codecs are exact inverses over every valid rule the model can hold.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTcMessage, encodeFilterDump, encodeFilterRequest, decodeFilterDump } from '../../rules/netlink/tc.js';
import { parseMessages, NlmF, Rtm } from '../../rules/netlink/nlmsg.js';
import { parseFilter, printFilter } from '../../rules/tcsyntax/index.js';
import { validateRule } from '../../rules/validate.js';
import { arbRule } from '../gen/rule.js';

describe('codec round trips', () => {
  it('generated rules are valid (the generator states kernel rules, not noise)', () => {
    fc.assert(
      fc.property(arbRule(), (r) => {
        expect(validateRule(r)?.message).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('decode(encode(r)) = r', () => {
    fc.assert(
      fc.property(arbRule(), (r) => {
        const d = decodeTcMessage(encodeFilterRequest(r));
        expect(d.ok).toBe(true);
        if (d.ok && d.value.type === 'filter' && d.value.op === 'new') expect(d.value.rule).toEqual(r);
        else throw new Error('not a new filter');
      }),
      { numRuns: 1000 },
    );
  });

  it('parse(print(r)) = r, and print is a fixed point', () => {
    fc.assert(
      fc.property(arbRule(), (r) => {
        const words = printFilter(r);
        const p = parseFilter(words);
        if (!p.ok) throw new Error(`${words.join(' ')}: ${p.error.message}`);
        expect(p.value).toEqual(r);
        expect(printFilter(p.value)).toEqual(words);
      }),
      { numRuns: 1000 },
    );
  });

  it('a dump entry carries the rule, its counters and in_hw back', () => {
    fc.assert(
      fc.property(arbRule(), fc.nat(1e9), fc.nat(1e12), fc.boolean(), (r, packets, bytes, inHw) => {
        const stats = { packets, bytes, lastUsedMs: 1200, installedMs: 5000, drops: 0, inHw, inHwCount: inHw ? 1 : 0 };
        const buf = encodeFilterDump(r, stats, { type: Rtm.NEWTFILTER, flags: NlmF.MULTI, seq: 7, pid: 0 });
        const d = decodeFilterDump(parseMessages(buf)[0]!);
        if (!d.ok) throw new Error(d.error.message);
        expect(d.value.rule).toEqual(r);
        if (r.actions.length) expect(d.value.stats).toMatchObject({ packets, bytes, inHw, lastUsedMs: 1200, installedMs: 5000 });
        else expect(d.value.stats.inHw).toBe(inHw);
      }),
      { numRuns: 300 },
    );
  });
});
