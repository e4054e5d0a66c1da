// The devlink genl subset: the family lookup the real `devlink` tool sends
// (captured), the eswitch requests and replies in devlink.h's layout.
import { describe, expect, it } from 'vitest';
import { Errno } from '../../rules/errors.js';
import {
  CTRL_ATTR, DEVLINK_ATTR, DEVLINK_CMD, DEVLINK_GENL_ID, GENL_ID_CTRL, decodeDevlinkReply, decodeDevlinkRequest,
  encodeDevGetRequest, encodeDevReply, encodeEswitchReply, encodeEswitchRequest, encodeFamilyReply, encodeFamilyRequest,
} from '../../rules/netlink/devlink.js';
import { AttrWriter, buildMessage, NlmF, parseAttrs, parseMessages, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { loadLinks } from '../corpus/captureLinks.js';

const one = (b: Buffer) => parseMessages(b)[0]!;
const handle = { bus: 'pci', dev: '0000:01:00.0' };
const genlMsg = (type: number, cmd: number, attrs: AttrWriter, flags = NlmF.REQUEST | NlmF.ACK): NlMessage =>
  one(buildMessage({ type, flags, seq: 5, pid: 0 }, Buffer.concat([Buffer.from([cmd, 1, 0, 0]), attrs.toBuffer()])));
const errOf = (m: NlMessage) => {
  const r = decodeDevlinkRequest(m);
  if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r.value)}`);
  return r.error;
};

describe('nlctrl: resolving "devlink"', () => {
  const captured = loadLinks().entries.find((e) => e.kind === 'genl')!;

  it("the real devlink tool's CTRL_CMD_GETFAMILY decodes, and our encoder sends the same bytes", () => {
    const m = one(Buffer.from(captured.message, 'hex'));
    expect(decodeDevlinkRequest(m)).toMatchObject({ ok: true, value: { cmd: 'getfamily' } });
    expect(encodeFamilyRequest({ seq: m.seq, pid: m.pid }).toString('hex')).toBe(captured.message);
  });

  it('the reply carries what mnlu_gen_socket_open needs (FAMILY_ID u16, MAXATTR u32), in ctrl_fill_info order', () => {
    const m = one(encodeFamilyReply({ seq: 9, pid: 4 }));
    expect(m).toMatchObject({ type: GENL_ID_CTRL, seq: 9, pid: 4 });
    expect(m.payload.readUInt8(0)).toBe(1); // CTRL_CMD_NEWFAMILY
    const attrs = parseAttrs(m.payload.subarray(4), 'ctrl');
    expect(attrs.map((a) => [a.type, a.value.length])).toEqual([[CTRL_ATTR.FAMILY_NAME, 8], [CTRL_ATTR.FAMILY_ID, 2], [CTRL_ATTR.VERSION, 4], [CTRL_ATTR.HDRSIZE, 4], [CTRL_ATTR.MAXATTR, 4]]);
    expect(decodeDevlinkReply(m)).toEqual({ ok: true, value: { cmd: 'family', id: DEVLINK_GENL_ID, name: 'devlink', maxattr: 176 } });
  });

  it('another family is ENOENT, as ctrl_getfamily answers; no name or id is EINVAL', () => {
    expect(errOf(genlMsg(GENL_ID_CTRL, 3, new AttrWriter().string(CTRL_ATTR.FAMILY_NAME, 'ethtool'))).errno).toBe(Errno.ENOENT);
    expect(errOf(genlMsg(GENL_ID_CTRL, 3, new AttrWriter().u16(CTRL_ATTR.FAMILY_ID, 0x33))).errno).toBe(Errno.ENOENT);
    expect(decodeDevlinkRequest(genlMsg(GENL_ID_CTRL, 3, new AttrWriter().u16(CTRL_ATTR.FAMILY_ID, DEVLINK_GENL_ID))).ok).toBe(true);
    expect(errOf(genlMsg(GENL_ID_CTRL, 3, new AttrWriter())).errno).toBe(Errno.EINVAL);
    expect(errOf(genlMsg(GENL_ID_CTRL, 6, new AttrWriter())).errno).toBe(Errno.EOPNOTSUPP);
  });

  it('the family id is outside the rtnetlink message types and inside the kernel\'s dynamic genl range', () => {
    expect(DEVLINK_GENL_ID).toBeGreaterThan(123);
    expect(DEVLINK_GENL_ID).toBeLessThanOrEqual(1023);
  });
});

describe('eswitch show/set', () => {
  it('ESWITCH_SET as devlink dl_opts_put lays it out: bus, dev (strings), mode u16, inline u8, encap u8', () => {
    const b = encodeEswitchRequest({ seq: 1 }, { cmd: 'eswitch-set', ...handle, mode: 'switchdev', inlineMode: 'transport', encapMode: 'basic' });
    const m = one(b);
    expect(m).toMatchObject({ type: DEVLINK_GENL_ID, flags: NlmF.REQUEST | NlmF.ACK });
    expect(m.payload.subarray(0, 4).toString('hex')).toBe('1e010000'); // cmd 30, version 1
    const attrs = parseAttrs(m.payload.subarray(4), 'devlink');
    expect(attrs.map((a) => [a.type, a.value.toString('hex')])).toEqual([
      [DEVLINK_ATTR.BUS_NAME, Buffer.from('pci\0').toString('hex')],
      [DEVLINK_ATTR.DEV_NAME, Buffer.from('0000:01:00.0\0').toString('hex')],
      [DEVLINK_ATTR.ESWITCH_MODE, '0100'],
      [DEVLINK_ATTR.ESWITCH_INLINE_MODE, '03'],
      [DEVLINK_ATTR.ESWITCH_ENCAP_MODE, '01'],
    ]);
    expect(decodeDevlinkRequest(m)).toMatchObject({ ok: true, value: { cmd: 'eswitch-set', bus: 'pci', dev: '0000:01:00.0', mode: 'switchdev', inlineMode: 'transport', encapMode: 'basic' } });
  });

  it('ESWITCH_GET and its reply (devlink_nl_eswitch_fill)', () => {
    const req = decodeDevlinkRequest(one(encodeEswitchRequest({ seq: 1 }, { cmd: 'eswitch-get', ...handle })));
    expect(req).toMatchObject({ ok: true, value: { cmd: 'eswitch-get', bus: 'pci', dev: '0000:01:00.0' } });
    expect(req.ok && 'mode' in req.value).toBe(false);
    const reply = one(encodeEswitchReply({ seq: 1, pid: 77 }, handle, { mode: 'legacy', inlineMode: 'none', encapMode: 'none' }));
    expect(reply.payload.readUInt8(0)).toBe(DEVLINK_CMD.ESWITCH_GET);
    expect(decodeDevlinkReply(reply)).toEqual({ ok: true, value: { cmd: 'eswitch', ...handle, mode: 'legacy', inlineMode: 'none', encapMode: 'none' } });
  });

  it('dev show: a dump request and one DEVLINK_CMD_NEW per device', () => {
    expect(decodeDevlinkRequest(one(encodeDevGetRequest({ seq: 1 })))).toMatchObject({ ok: true, value: { cmd: 'get', dump: true } });
    const r = one(encodeDevReply({ seq: 1, flags: NlmF.MULTI }, handle));
    expect(r.flags).toBe(NlmF.MULTI);
    expect(decodeDevlinkReply(r)).toEqual({ ok: true, value: { cmd: 'dev', ...handle } });
  });

  it('refusals: no handle, a mode out of range, a wrong-size mode, unknown commands and attributes', () => {
    expect(errOf(genlMsg(DEVLINK_GENL_ID, 30, new AttrWriter().u16(25, 1))).errno).toBe(Errno.EINVAL);
    const h = () => new AttrWriter().string(1, 'pci').string(2, '0000:01:00.0');
    expect(errOf(genlMsg(DEVLINK_GENL_ID, 30, h().u16(25, 2))).errno).toBe(Errno.ERANGE);
    expect(errOf(genlMsg(DEVLINK_GENL_ID, 30, h().u32(25, 1))).message).toMatch(/DEVLINK_ATTR_ESWITCH_MODE: length 4, expected 2/);
    expect(errOf(genlMsg(DEVLINK_GENL_ID, 30, h().u8(26, 9))).errno).toBe(Errno.ERANGE);
    expect(errOf(genlMsg(DEVLINK_GENL_ID, 7, h())).errno).toBe(Errno.EOPNOTSUPP);
    expect(errOf(genlMsg(DEVLINK_GENL_ID, 29, h().u32(300, 1))).errno).toBe(Errno.EINVAL);
    expect(errOf(genlMsg(0x42, 29, h())).errno).toBe(Errno.EOPNOTSUPP);
  });
});
