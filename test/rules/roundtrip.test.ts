// Both codecs are exact inverses over every valid rule the model can hold.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTcMessage, encodeFilterDump, encodeFilterRequest, decodeFilterDump } from '../../rules/netlink/tc.js';
import { parseMessages, NlmF, Rtm } from '../../rules/netlink/nlmsg.js';
import { parseFilter, printFilter } from '../../rules/tcsyntax/index.js';
import { validateRule } from '../../rules/validate.js';
import { Errno, type VpfError } from '../../rules/errors.js';
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

  it('parse(print(r)) = r, and print is a fixed point (for every rule tc syntax can say)', () => {
    let printable = 0;
    fc.assert(
      fc.property(arbRule(), (r) => {
        let words: string[];
        try {
          words = printFilter(r);
        } catch (e) {
          // What tc's own parsers cannot say (a masked enc_dst_port, a port range from 0...) is refused by name.
          expect((e as VpfError).errno).toBe(Errno.EOPNOTSUPP);
          expect((e as Error).message).toMatch(/no tc syntax/);
          return;
        }
        printable++;
        const p = parseFilter(words);
        if (!p.ok) throw new Error(`${words.join(' ')}: ${p.error.message}`);
        expect(p.value).toEqual(r);
        expect(printFilter(p.value)).toEqual(words);
      }),
      { numRuns: 1000 },
    );
    expect(printable).toBeGreaterThan(500);
  });

  it('a dump entry carries the rule, its counters and in_hw back; re-encoding what was read gives the same bytes', () => {
    const hdr = { type: Rtm.NEWTFILTER, flags: NlmF.MULTI, seq: 7, pid: 0 };
    fc.assert(
      fc.property(arbRule(), fc.nat(1e9), fc.nat(1e12), fc.boolean(), fc.option(fc.record({ packets: fc.nat(1e9), bytes: fc.nat(1e12) }), { nil: undefined }), (r, packets, bytes, inHw, hw) => {
        const stats = { packets, bytes, lastUsedMs: 1200, installedMs: 5000, drops: 0, inHw, inHwCount: inHw ? 1 : 0, ...(hw ? { hw } : {}) };
        const buf = encodeFilterDump(r, stats, hdr);
        const d = decodeFilterDump(parseMessages(buf)[0]!);
        if (!d.ok) throw new Error(d.error.message);
        // The kernel's view keeps what identifies the filter; actions gain the kernel's defaults (vlan push prio 0, ct zone 0...).
        const { match: _m, actions: _a, ...id } = r;
        const { match: _m2, actions: _a2, ...idBack } = d.value.rule;
        expect(idBack).toEqual(id);
        expect(d.value.rule.actions.map((a) => a.kind)).toEqual(r.actions.map((a) => a.kind));
        expect(encodeFilterDump(d.value.rule, d.value.stats, hdr).equals(buf)).toBe(true);
        if (r.actions.length) expect(d.value.stats).toMatchObject({ packets, bytes, inHw, lastUsedMs: 1200, installedMs: 5000 });
        else expect(d.value.stats.inHw).toBe(inHw);
        // Hardware counters come back for actions in hardware (USED_HW_STATS), even at 0; a not-offloaded one's zero BASIC_HW is none.
        if (r.actions.length && hw) expect(d.value.stats.hw).toEqual(hw);
        else expect(d.value.stats.hw).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});
