// The tc action API codec (rules/netlink/tcaction.ts) against what the real
// iproute2 6.1 `tc actions` sends (captured with strace, test/helpers/nlcapture.ts),
// and its decoder under hostile input: a typed refusal or a request, never a throw.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Errno, VpfError } from '../../rules/errors.js';
import type { PoliceAction } from '../../rules/model.js';
import { AttrWriter, buildMessage, NlmF, parseMessages } from '../../rules/netlink/nlmsg.js';
import { decodeActionReply, decodeActionRequest, encodeActionDump, encodeActionGetReply, encodeActionRequest, RtmAction, TCA_ACT_FLAG, type ActionRequest } from '../../rules/netlink/tcaction.js';
import { captureBatch, haveStrace } from '../helpers/nlcapture.js';

const decode = (b: Buffer) => decodeActionRequest(parseMessages(b)[0]!);

function checked(b: Buffer) {
  let msgs;
  try {
    msgs = parseMessages(b);
  } catch {
    return undefined;
  }
  if (msgs.length !== 1) return undefined;
  const r = decodeActionRequest(msgs[0]!);
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(VpfError);
    expect(r.error.errno).toBeGreaterThan(0);
    expect(r.error.message).not.toMatch(/^internal error/);
  }
  return r;
}

const CMDS = [
  'actions add action police rate 1mbit burst 10k index 5',
  'actions add action police rate 1mbit burst 10k',
  'actions replace action police rate 2mbit burst 20k conform-exceed drop/pipe index 5',
  'actions change action police rate 2mbit burst 20k index 5',
  'actions add action police pkts_rate 1000 pkts_burst 100 index 3',
  'actions get action police index 5',
  'actions del action police index 5',
  'actions flush action police',
];

describe('tc action requests as real tc sends them', async () => {
  const can = await haveStrace();
  const cap = can ? await captureBatch(CMDS.map((c) => ['tc', ...c.split(' ')]), []) : undefined;
  const bytes = (i: number) => cap!.captures[i]!.messages.find((m) => m.readUInt16LE(4) >= 48 && m.readUInt16LE(4) <= 50)!;

  it.skipIf(!can)('add: police values, the index, EXCL|CREATE', () => {
    const r = decode(bytes(0));
    expect(r.ok).toBe(true);
    const m = r.ok ? r.value : undefined;
    expect(m?.op).toBe('new');
    if (m?.op !== 'new') return;
    expect(m.replace).toBe(false);
    expect(m.hdr.flags).toBe(NlmF.REQUEST | NlmF.ACK | NlmF.EXCL | NlmF.CREATE);
    expect(m.actions).toEqual([{ kind: 'police', index: 5, rate: 125000, burst: 10240, control: { kind: 'pass' }, exceed: { kind: 'reclassify' } }]);
    const noIndex = decode(bytes(1));
    expect(noIndex.ok && noIndex.value.op === 'new' && noIndex.value.actions[0]!.index).toBeFalsy();
  });

  it.skipIf(!can)('replace and change send NLM_F_REPLACE; conform-exceed drop/pipe', () => {
    for (const i of [2, 3]) {
      const r = decode(bytes(i));
      expect(r.ok && r.value.op === 'new' && r.value.replace).toBe(true);
    }
    const r = decode(bytes(2));
    const p = (r.ok && r.value.op === 'new' ? r.value.actions[0] : undefined) as PoliceAction;
    expect({ exceed: p.exceed, control: p.control, rate: p.rate }).toEqual({ exceed: { kind: 'drop' }, control: { kind: 'pipe' }, rate: 250000 });
    const pps = decode(bytes(4));
    expect(pps.ok && pps.value.op === 'new' && pps.value.actions[0]).toMatchObject({ pktsPerSec: 1000, pktBurst: 100, index: 3 });
  });

  it.skipIf(!can)('re-encoded requests decode to the same values; get, del and flush are byte-identical', () => {
    for (let i = 0; i < CMDS.length; i++) {
      const real = bytes(i);
      const r = decode(real);
      expect(r.ok, CMDS[i]).toBe(true);
      if (!r.ok) continue;
      const again = encodeActionRequest(r.value);
      expect(decode(again)).toEqual(r);
      // A police request's rate table is iproute2's; vpf writes zeros there (the kernel reads only its cell_log).
      if (r.value.op !== 'new') expect(again.toString('hex'), CMDS[i]).toBe(real.toString('hex'));
    }
  });

  it.skipIf(!can)('get, del by index; flush is DEL with NLM_F_ROOT', () => {
    expect(decode(bytes(5))).toMatchObject({ ok: true, value: { op: 'get', refs: [{ kind: 'police', index: 5 }] } });
    expect(decode(bytes(5)).ok && (decode(bytes(5)) as { value: ActionRequest }).value.hdr.flags).toBe(NlmF.REQUEST);
    expect(decode(bytes(6))).toMatchObject({ ok: true, value: { op: 'del', refs: [{ kind: 'police', index: 5 }] } });
    expect(decode(bytes(7))).toMatchObject({ ok: true, value: { op: 'flush', kind: 'police' } });
  });
});

const hdr = (type: number, flags: number) => ({ type, flags, seq: 7, pid: 0 });
const msg = (type: number, flags: number, w: AttrWriter) => buildMessage(hdr(type, flags), Buffer.concat([Buffer.alloc(4), w.toBuffer()]));

describe('act_api.c refusals', () => {
  it('no TCA_ACT_TAB: EINVAL "Netlink action attributes missing"', () => {
    const r = decode(msg(RtmAction.NEW, NlmF.REQUEST | NlmF.CREATE, new AttrWriter()));
    expect(r.ok ? undefined : [r.error.errno, r.error.message]).toEqual([Errno.EINVAL, 'Netlink action attributes missing']);
  });
  it('get without an index, or without a kind (tcf_action_get_1 order)', () => {
    const noIdx = decode(msg(RtmAction.GET, NlmF.REQUEST, new AttrWriter().nest(1, (x) => x.nest(1, (y) => y.string(1, 'police')))));
    expect(noIdx.ok ? undefined : noIdx.error.message).toBe('Invalid TC action index value');
    const noKind = decode(msg(RtmAction.GET, NlmF.REQUEST, new AttrWriter().nest(1, (x) => x.nest(1, (y) => y.u32(3, 5)))));
    expect(noKind.ok ? undefined : noKind.error.message).toBe('Specified TC action kind not found');
  });
  it('a dump without a kind decodes (tc_dump_action then sends nothing)', () => {
    const r = decode(msg(RtmAction.GET, NlmF.REQUEST | NlmF.DUMP, new AttrWriter()));
    expect(r).toMatchObject({ ok: true, value: { op: 'dump', kind: undefined } });
  });
});

describe('replies', () => {
  const police: PoliceAction = { kind: 'police', rate: 125000, burst: 10240, control: { kind: 'pass' }, exceed: { kind: 'reclassify' } };
  const entry = (index: number, ref: number, bind: number) => ({ action: police, index, ref, bind, counters: { bytes: 0, packets: 0, drops: 0 }, tm: Buffer.alloc(32), inHwCount: 0 });

  it('a get reply reads back with its index, ref and bind; numbered from 1, flags 0', () => {
    const b = encodeActionGetReply({ seq: 3, pid: 0 }, [entry(5, 2, 1)]);
    const m = parseMessages(b)[0]!;
    expect([m.type, m.flags]).toEqual([RtmAction.GET, 0]);
    const r = decodeActionReply(m);
    expect(r).toEqual({ ok: true, value: { count: undefined, actions: [{ order: 1, action: { ...police, index: 5, mtu: 2040 }, ref: 2, bind: 1 }] } });
  });

  it('a large dump is one message counted in TCA_ROOT_COUNT, numbered from 0; without LARGE_DUMP_ON 32 a message', () => {
    const acts = Array.from({ length: 40 }, (_, i) => entry(i + 1, 1, 0));
    const large = encodeActionDump({ seq: 3, pid: 0 }, acts, TCA_ACT_FLAG.LARGE_DUMP_ON);
    expect(large.length).toBe(1);
    const r = decodeActionReply(parseMessages(large[0]!)[0]!);
    expect(r.ok && [r.value.count, r.value.actions.length, r.value.actions[0]!.order]).toEqual([40, 40, 0]);
    const small = encodeActionDump({ seq: 3, pid: 0 }, acts, 0);
    expect(small.map((b) => (decodeActionReply(parseMessages(b)[0]!) as { value: { actions: unknown[] } }).value.actions.length)).toEqual([32, 8]);
    expect(encodeActionDump({ seq: 3, pid: 0 }, [], TCA_ACT_FLAG.LARGE_DUMP_ON)).toEqual([]);
  });
});

describe('decoder under hostile input', () => {
  const seeds = [
    encodeActionRequest({ op: 'new', hdr: hdr(RtmAction.NEW, NlmF.REQUEST | NlmF.CREATE | NlmF.EXCL), replace: false, actions: [{ kind: 'police', index: 5, rate: 125000, burst: 10240, control: { kind: 'pass' }, exceed: { kind: 'drop' } }] }),
    encodeActionRequest({ op: 'get', hdr: hdr(RtmAction.GET, NlmF.REQUEST), refs: [{ kind: 'police', index: 5 }] }),
    encodeActionRequest({ op: 'flush', hdr: hdr(RtmAction.DEL, NlmF.REQUEST | NlmF.ROOT), kind: 'police' }),
    encodeActionRequest({ op: 'dump', hdr: hdr(RtmAction.GET, NlmF.REQUEST | NlmF.DUMP), kind: 'police', flags: 1 }),
  ];

  it('random bytes after a valid header', () => {
    fc.assert(
      fc.property(fc.constantFrom(48, 49, 50), fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 300 }), (type, flags, body) => {
        void checked(buildMessage(hdr(type, flags | NlmF.REQUEST), Buffer.from(body)));
      }),
      { numRuns: 3000 },
    );
  });

  it('byte flips and truncations of valid requests', () => {
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.nat(), fc.integer({ min: 0, max: 255 }), (seed, at, v) => {
        const b = Buffer.from(seed);
        const i = 16 + (at % (b.length - 16));
        b[i] = v;
        void checked(b);
        void checked(Buffer.from(b.subarray(0, i)));
      }),
      { numRuns: 3000 },
    );
  });
});
