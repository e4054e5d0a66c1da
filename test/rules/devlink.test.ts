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
    expect(attrs.map((a) => a.type)).toEqual([CTRL_ATTR.FAMILY_NAME, CTRL_ATTR.FAMILY_ID, CTRL_ATTR.VERSION, CTRL_ATTR.HDRSIZE, CTRL_ATTR.MAXATTR, CTRL_ATTR.OPS, CTRL_ATTR.MCAST_GROUPS]);
    expect(decodeDevlinkReply(m)).toEqual({ ok: true, value: { cmd: 'family', id: DEVLINK_GENL_ID, name: 'devlink', maxattr: 176 } });
  });

  it("is byte for byte a 6.1 kernel's reply (Debian 6.1.0-57, devlink family id 0x15, seq 9, port id 0x92)", () => {
    // Captured under QEMU (tools/kernel-vm) from `CTRL_CMD_GETFAMILY devlink`; only the family id differs on the channel.
    const kernel = 'c0040000100000000900000092000000010200000c0002006465766c696e6b0006000100150000000800030001000000080004000000000008000500b000000064040600140001000800010001000000080002000e000000140002000800010005000000080002000e000000140003000800010006000000080002000b00000014000400080001004a000000080002000e00000014000500080001004b000000080002000b00000014000600080001004c000000080002000b00000014000700080001004d000000080002000b000000140008000800010009000000080002000b00000014000900080001000a000000080002000b00000014000a000800010007000000080002000b00000014000b000800010008000000080002000b00000014000c00080001004e000000080002000e00000014000d00080001004f000000080002000b00000014000e00080001000b000000080002000e00000014000f00080001000f000000080002000e000000140010000800010010000000080002000b000000140011000800010013000000080002000e000000140012000800010014000000080002000b000000140013000800010017000000080002000e000000140014000800010018000000080002000b00000014001500080001001b000000080002000b00000014001600080001001c000000080002000b00000014001700080001001d000000080002000b00000014001800080001001e000000080002000b00000014001900080001001f000000080002000a00000014001a000800010020000000080002000a00000014001b000800010021000000080002000a00000014001c000800010022000000080002000b00000014001d000800010023000000080002000b00000014001e000800010024000000080002000a00000014001f000800010025000000080002000b000000140020000800010026000000080002000e000000140021000800010027000000080002000b00000014002200080001002f000000080002000e000000140023000800010030000000080002000b00000014002400080001002a000000080002000f00000014002500080001002c000000080002000b00000014002600080001002d000000080002000b00000014002700080001002e000000080002000d000000140028000800010033000000080002000e000000140029000800010034000000080002000e00000014002a000800010035000000080002000b00000014002b000800010036000000080002000b00000014002c000800010037000000080002000b00000014002d000800010038000000080002000d00000014002e000800010039000000080002000b00000014002f000800010049000000080002000b00000014003000080001003a000000080002000b00000014003100080001003d000000080002000e00000014003200080001003e000000080002000b000000140033000800010041000000080002000e000000140034000800010042000000080002000b000000140035000800010045000000080002000e000000140036000800010046000000080002000b000000140037000800010052000000080002000e000000140038000800010053000000080002000b0000001c0007001800010008000200050000000b000100636f6e6669670000';
    expect(encodeFamilyReply({ seq: 9, pid: 0x92 }, 0x15).toString('hex')).toBe(kernel);
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
    // devlink_nl_fill: handle, RELOAD_FAILED u8 0, DEV_STATS { RELOAD_STATS {}, REMOTE_RELOAD_STATS { driver_reinit: unspec; fw_activate: unspec, no_reset } }.
    const attrs = parseAttrs(r.payload.subarray(4), 'dev');
    expect(attrs.map((a) => [a.type, a.nested, a.value.length])).toEqual([[1, false, 4], [2, false, 13], [136, false, 1], [156, true, 100]]);
    const [local, remote] = parseAttrs(attrs[3]!.value, 'stats');
    expect([local!.type, local!.value.length, remote!.type]).toEqual([157, 0, 161]);
    const infos = parseAttrs(remote!.value, 'remote').map((i) => parseAttrs(i.value, 'info'));
    expect(infos.map((i) => [i[0]!.value[0], parseAttrs(i[1]!.value, 'as').map((e) => parseAttrs(e.value, 'e')[0]!.value[0])])).toEqual([[1, [0]], [2, [0, 1]]]);
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
