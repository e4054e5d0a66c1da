// The decoders are the daemon's front door: whatever a guest sends, they answer
// with a typed error (errno + extack text) or a valid rule. Never a throw, never a hang.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VpfError, Errno } from '../../rules/errors.js';
import { AttrWriter, buildMessage, NlmF, Rtm } from '../../rules/netlink/nlmsg.js';
import { decodeTcMessage, encodeFilterRequest } from '../../rules/netlink/tc.js';
import { ticksToBurst } from '../../rules/psched.js';
import { parseFilter } from '../../rules/tcsyntax/index.js';
import { validateRule } from '../../rules/validate.js';
import { loadCaptures } from '../corpus/corpus.js';
import { arbRule } from '../gen/rule.js';

const corpus = loadCaptures();
const devs = new Map(Object.entries(corpus.ifindex));
const samples = corpus.entries.map((e) => Buffer.from(e.message, 'hex'));

/** Decodes and checks the contract: a Result; errors carry a positive errno and a message, or (a bare kernel errno) the attribute at fault. */
function decodeChecked(buf: Buffer) {
  const r = decodeTcMessage(buf, { devs });
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(VpfError);
    expect(r.error.errno).toBeGreaterThan(0);
    expect(r.error.message.length || r.error.attr?.length).toBeGreaterThan(0);
    expect(r.error.message).not.toMatch(/^internal error/);
  } else if (r.value.type === 'filter' && r.value.op === 'new') {
    // Whatever decodes is a rule the kernel would accept.
    expect(validateRule(r.value.rule)).toBeUndefined();
  }
  return r;
}

const tcmsg = (ifindex: number, info: number) => {
  const b = Buffer.alloc(20);
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(0xfffffff2, 12);
  b.writeUInt32LE(info, 16);
  return b;
};
const newFilter = (attrs: Buffer, info = (1 << 16) | 0x0008) =>
  buildMessage({ type: Rtm.NEWTFILTER, flags: NlmF.REQUEST | NlmF.ACK | NlmF.CREATE | NlmF.EXCL, seq: 1, pid: 0 }, Buffer.concat([tcmsg(devs.get('vf0')!, info), attrs]));
const flower = (opts: (w: AttrWriter) => void) => new AttrWriter().string(1, 'flower').nest(2, opts).toBuffer();

describe('decoder under hostile input', () => {
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => void decodeChecked(Buffer.from(b))), { numRuns: 3000 });
  });

  it('every truncation of real messages', () => {
    for (const m of samples.slice(0, 40)) {
      for (let n = 0; n < m.length; n += 3) {
        const cut = Buffer.from(m.subarray(0, n));
        const r = decodeChecked(cut);
        // A header that claims more bytes than arrived is EBADMSG, never a partial rule.
        if (n >= 16) expect(r.ok).toBe(false);
      }
    }
  });

  it('lying lengths inside real messages (byte flips, fixed nlmsg_len)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: samples.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (i, flips) => {
        const m = Buffer.from(samples[i]!);
        for (const [pos, v] of flips) m[16 + (pos % (m.length - 16))] = v;
        decodeChecked(m);
      }),
      { numRuns: 5000 },
    );
  });

  it('a police with an absurd packet rate decodes at once (burst conversion once looped forever above 2^52)', () => {
    // Found by the byte-flip property: PKTRATE64 = 5.5e16, PKTBURST64 = 1562500 ticks.
    const m = Buffer.from('e40000002c0005063100066b00000000000000000400000000000000f2ffffff08001f000b000100666c6f7765720000b4000200a0000300700001000b000100706f6c6963650000600002803c00010000000000020000000000000000000000000000000000000000f800000000000000000000000000000000000000000000000000000000000008000500030000000c000a00e80300000000c5000c000b0084d71700000000002c0002000900010067616374000000001c00028018000200000000000000000000000000000000000000000008001600000000000600080008000000', 'hex');
    decodeChecked(m);
    expect(ticksToBurst(1562500, 55450570412000230)).toBe(5545057041200023);
    expect(ticksToBurst(2 ** 32 - 1, 2 ** 64)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('nesting deeper than the kernel allows is refused, not recursed into', () => {
    let inner = new AttrWriter().u32(1, 0).toBuffer();
    for (let d = 0; d < 200; d++) inner = new AttrWriter().raw(1 | 0x8000, inner).toBuffer();
    const r = decodeChecked(newFilter(flower((w) => w.raw(3, inner))));
    expect(r.ok).toBe(false);
  });

  it('a mask without its key names the attribute', () => {
    const r = decodeChecked(newFilter(flower((w) => w.raw(5 /* ETH_DST_MASK */, Buffer.alloc(6, 0xff)))));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/ETH_DST_MASK given without/);
  });

  it('a key without the protocol it needs is EINVAL, not silently ignored', () => {
    const r = decodeChecked(newFilter(flower((w) => w.u8(9, 6).be16(19, 80)), (1 << 16) | 0x0300 /* protocol all */));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.errno).toBe(Errno.EINVAL);
  });

  it('a key of the wrong length is EINVAL naming it', () => {
    const r = decodeChecked(newFilter(flower((w) => w.raw(9 /* IP_PROTO */, Buffer.alloc(3)))));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/TCA_FLOWER_KEY_IP_PROTO: length 3/);
  });

  it('unknown attributes and unmodelled keys are refused by name', () => {
    const unknown = decodeChecked(newFilter(flower((w) => w.u32(250, 1))));
    expect(!unknown.ok && unknown.error.message).toMatch(/unknown flower attribute 250/);
    const pppoe = decodeChecked(newFilter(flower((w) => w.be16(103, 1))));
    expect(!pppoe.ok && pppoe.error.errno).toBe(Errno.EOPNOTSUPP);
    expect(!pppoe.ok && pppoe.error.message).toMatch(/PPPOE_SID/);
  });

  it('impossible combinations: skip_sw with skip_hw, new with est', () => {
    const both = decodeChecked(newFilter(flower((w) => w.u32(22, 3))));
    // The kernel's bare EINVAL: no extack text (fl_change, tc_flags_valid).
    expect(!both.ok && [both.error.errno, both.error.message]).toEqual([Errno.EINVAL, '']);
    const ct = decodeChecked(newFilter(flower((w) => w.u16(91, 0x0b).u16(92, 0x0b))));
    expect(!ct.ok && ct.error.message).toBe('new and est are mutually exclusive');
  });

  it('an unknown action kind is EOPNOTSUPP naming it', () => {
    const act = new AttrWriter().nest(1, (a) => a.string(1, 'bpf').nest(2, () => {})).toBuffer();
    const r = decodeChecked(newFilter(flower((w) => w.raw(3, act))));
    expect(!r.ok && r.error.errno).toBe(Errno.EOPNOTSUPP);
    expect(!r.ok && r.error.message).toMatch(/'bpf'/);
  });

  it('mutations of encoded generated rules', () => {
    fc.assert(
      fc.property(arbRule(), fc.nat(), fc.integer({ min: 0, max: 255 }), (rule, pos, v) => {
        const m = encodeFilterRequest(rule, {}, devs);
        m[16 + (pos % (m.length - 16))] = v;
        decodeChecked(m);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('tc-syntax parser under hostile input', () => {
  const words = fc.constantFrom('dev', 'vf0', 'ingress', 'prio', '1', 'protocol', 'ip', 'flower', 'action', 'drop', 'mirred', 'egress', 'redirect', 'dst_ip', '10.0.0.1/33', 'ip_proto', 'tcp', 'dst_port', '1-1', 'ct_state', '+new+est', 'pedit', 'ex', 'munge', 'ip', 'ttl', 'dec', 'police', 'rate', '1mbit', 'burst', 'x', '/', '');
  it('token soup always gives a Result', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(words, fc.string()), { maxLength: 30 }), (args) => {
        const r = parseFilter(args);
        if (!r.ok) {
          expect(r.error.errno).toBeGreaterThan(0);
          expect(r.error.message).not.toMatch(/^internal error/);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
