// The dump side against a real 6.1 kernel: test/corpus/kernel-dumps.json holds what
// Debian's 6.1 kernel answered to RTM_GETTFILTER / RTM_GETCHAIN dumps after
// `tc filter add` of every corpus command (see docs/rules.md, "Kernel dump corpus").
// encodeFilterDump of the rule parsed from the command text must be those bytes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFilterDump, encodeChainReply, encodeFilterDump, encodeFilterHead } from '../../rules/netlink/tc.js';
import { parseMessages, parseAttrs, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import type { FilterStats } from '../../rules/model.js';

interface KernelDumps {
  kernel: string;
  ifindex: Record<string, number>;
  chains: string[];
  entries: { cmd: string; kernelArgs: string; head: string; filter: string }[];
}

const data = JSON.parse(readFileSync(join(__dirname, '../corpus/kernel-dumps.json'), 'utf8')) as KernelDumps;
const devs = new Map(Object.entries(data.ifindex));
const msgOf = (hex: string): NlMessage => parseMessages(Buffer.from(hex, 'hex'))[0]!;

/** The attribute tree as text, nests recognised by where they sit (for readable diffs). */
function tree(buf: Buffer, path: number[] = [], depth = 0): string[] {
  const out: string[] = [];
  for (const a of parseAttrs(buf, 'tree')) {
    const p = [...path, a.type];
    const act = p[1] === 3;
    const kind = act && p.length >= 4 ? kindAt : '';
    const isNest =
      (p.length === 1 && a.type === 2) ||
      (p.length === 2 && [3, 84, 85].includes(a.type)) ||
      (p.length === 3 && (act || p[1] === 84 || p[1] === 85)) ||
      (p.length === 4 && act && (a.type === 2 || a.type === 4)) ||
      (p.length === 5 && act && p[3] === 2 && ((kind === 'pedit' && a.type === 5) || (kind === 'tunnel_key' && a.type === 11))) ||
      (p.length === 6 && act && p[3] === 2 && ((kind === 'pedit' && p[4] === 5) || (kind === 'tunnel_key' && p[4] === 11)));
    if (p.length === 4 && act && a.type === 1) kindAt = a.value.subarray(0, -1).toString();
    out.push(`${'  '.repeat(depth)}${a.type}${a.nested ? '/N' : ''} len=${a.value.length} ${isNest ? '' : a.value.toString('hex')}`);
    if (isNest) out.push(...tree(a.value, p, depth + 1));
  }
  return out;
}
let kindAt = '';
const show = (m: Buffer) => [m.subarray(0, 36).toString('hex'), ...tree(m.subarray(36))].join('\n');

function actionIndexes(filter: NlMessage): number[] {
  const d = decodeFilterDump(filter, devs);
  if (!d.ok) throw new Error(d.error.message);
  return d.value.rule.actions.map((a) => a.index ?? 0);
}

/** Where each kind keeps its tc_gen-like parms in the dump, and the offset of bindcnt there (police: struct tc_police). */
const PARMS: Record<string, [number, number]> = { gact: [2, 16], mirred: [2, 16], vlan: [2, 16], pedit: [4, 16], csum: [1, 16], tunnel_key: [2, 16], ct: [1, 16], police: [1, 48], skbedit: [2, 16], sample: [2, 16], mpls: [2, 16] };

/** The kernel's bindcnt of each action (two corpus filters naming one `index` share an action). */
function actionBinds(filter: NlMessage): number[] {
  const opts = parseAttrs(filter.payload.subarray(20), 'tcm').find((a) => a.type === 2)!;
  const act = parseAttrs(opts.value, 'opts').find((a) => a.type === 3);
  if (!act) return [];
  return parseAttrs(act.value, 'act').map((e) => {
    const m = new Map(parseAttrs(e.value, 'entry').map((a) => [a.type, a]));
    const kind = m.get(1)!.value.subarray(0, -1).toString();
    const [type, off] = PARMS[kind]!;
    const p = parseAttrs(m.get(2)!.value, 'o').find((a) => a.type === type)!;
    return p.value.readInt32LE(off);
  });
}

function statsOf(filter: NlMessage): FilterStats {
  const d = decodeFilterDump(filter, devs);
  if (!d.ok) throw new Error(d.error.message);
  return d.value.stats;
}


describe(`dump entries are what Linux ${data.kernel} sends`, () => {
  it('covers every corpus add command the kernel accepts without hardware', () => {
    expect(data.entries.length).toBeGreaterThanOrEqual(150);
  });

  for (const e of data.entries) {
    it(e.cmd, () => {
      const k = msgOf(e.filter);
      const parsed = parseFilter(splitArgs(e.cmd).slice(1));
      if (!parsed.ok) throw new Error(parsed.error.message);
      const tcm = k.payload;
      const rule = { ...parsed.value, dev: 'b', direction: 'ingress' as const, prio: tcm.readUInt32LE(16) >>> 16, handle: tcm.readUInt32LE(8) };
      const hdr = { type: k.type, flags: k.flags, seq: k.seq, pid: k.pid };
      const mine = encodeFilterDump(rule, statsOf(k), hdr, devs, { actionIndex: actionIndexes(k), actionBind: actionBinds(k) });
      // Each action's tcf_t is its own (statsOf reads each back), as the kernel stamps each when it creates it.
      const theirs = Buffer.from(e.filter, 'hex');
      if (!mine.equals(theirs)) expect(show(mine)).toBe(show(theirs));
      const head = msgOf(e.head);
      const h = encodeFilterHead({ dev: 'b', direction: 'ingress', chain: rule.chain, prio: rule.prio, protocol: rule.protocol }, { type: head.type, flags: head.flags, seq: head.seq, pid: head.pid }, devs);
      expect(h.toString('hex')).toBe(e.head);
    });
  }

  it('chain replies', () => {
    for (const c of data.chains) {
      const m = msgOf(c);
      const chain = m.payload.readUInt32LE(24);
      const mine = encodeChainReply({ dev: 'b', direction: 'ingress', chain }, { type: m.type, flags: m.flags, seq: m.seq, pid: m.pid }, devs);
      expect(mine.toString('hex')).toBe(c);
    }
  });

  it('decodeFilterDump never throws on damaged kernel dumps (a Result either way)', () => {
    const bufs = data.entries.map((e) => Buffer.from(e.filter, 'hex'));
    fc.assert(
      fc.property(fc.nat(bufs.length - 1), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 8 }), (i, flips) => {
        const b = Buffer.from(bufs[i]!);
        for (const [at, v] of flips) b[16 + (at % (b.length - 16))] = v;
        const msg = { type: 44, flags: 2, seq: 1, pid: 0, payload: b.subarray(16) };
        const r = decodeFilterDump(msg, devs);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});
