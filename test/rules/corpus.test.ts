// The bar for both codecs: for every command of the corpus, the bytes the real
// iproute2 sent decode to exactly the rule our text parser makes of the command,
// and our encoder's bytes decode back to that rule.
import { describe, expect, it } from 'vitest';
import { decodeTcMessage, encodeFilterRequest, type TcMessage } from '../../rules/netlink/tc.js';
import { parseFilter, printFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { captureCorpus } from '../corpus/capture.js';
import { corpusCommands, loadCaptures } from '../corpus/corpus.js';
import { haveStrace } from '../helpers/nlcapture.js';

const corpus = loadCaptures();
const devs = new Map(Object.entries(corpus.ifindex));

function decoded(hex: string): TcMessage {
  const r = decodeTcMessage(Buffer.from(hex, 'hex'), { devs });
  if (!r.ok) throw new Error(`decode failed: ${r.error.message}`);
  return r.value;
}

describe('corpus of real iproute2 captures', () => {
  it('covers at least 120 distinct commands, one capture each', () => {
    expect(new Set(corpus.entries.map((e) => e.cmd)).size).toBeGreaterThanOrEqual(120);
    expect(corpus.entries.map((e) => e.cmd)).toEqual(corpusCommands());
  });

  for (const e of corpus.entries) {
    const [verb, ...args] = splitArgs(e.cmd);
    it(`${verb} ${args.join(' ')}`, () => {
      const msg = decoded(e.message);
      if (verb === 'del') {
        expect(msg.type === 'filter' && msg.op === 'del').toBe(true);
        const sel = parseFilter(args, { selectorOnly: true });
        expect(sel.ok).toBe(true);
        if (msg.type !== 'filter' || msg.op !== 'del' || !sel.ok) return;
        expect(msg.sel.dev).toBe(sel.value.dev);
        expect(msg.sel.prio).toBe(sel.value.prio);
        expect(msg.sel.handle).toBe(sel.value.handle);
        expect(msg.sel.protocol).toBe(sel.value.protocol === 3 && !args.includes('protocol') ? 0 : sel.value.protocol);
        return;
      }
      expect(msg.type === 'filter' && msg.op === 'new').toBe(true);
      if (msg.type !== 'filter' || msg.op !== 'new') return;
      const parsed = parseFilter(args);
      if (!parsed.ok) throw new Error(`parse failed: ${parsed.error.message}`);
      expect(msg.rule).toEqual(parsed.value);
      // Our encoder's bytes say the same thing.
      const again = decodeTcMessage(encodeFilterRequest(msg.rule, {}, devs), { devs });
      expect(again.ok && again.value.type === 'filter' && again.value.op === 'new' && again.value.rule).toEqual(msg.rule);
      // And the canonical text parses back to it.
      expect(parseFilter(printFilter(msg.rule))).toEqual({ ok: true, value: msg.rule });
    });
  }

  it('still matches what this machine\'s iproute2 sends (live re-capture of a sample)', async () => {
    if (!(await haveStrace())) throw new Error('strace is missing: scripts/deps.sh installs it');
    const sample = corpus.entries.filter((_, i) => i % 10 === 0);
    const live = await captureCorpus(sample.map((e) => e.cmd));
    const liveDevs = new Map(Object.entries(live.ifindex));
    live.entries.forEach((l, i) => {
      const a = decodeTcMessage(Buffer.from(l.message, 'hex'), { devs: liveDevs });
      const b = decoded(sample[i]!.message);
      // The sequence number is a timestamp; everything else must agree.
      expect(a.ok && { ...a.value, hdr: { ...a.value.hdr, seq: 0 } }).toEqual({ ...b, hdr: { ...b.hdr, seq: 0 } });
    });
  });
});
