// The legacy-mode rtnetlink codec against the real iproute2: what `ip link set
// DEV vf N ...` sends decodes to the request the command means, our encoder
// sends the same bytes back, and our GETLINK reply has the kernel's layout
// (include/uapi/linux/if_link.h structs, net/core/rtnetlink.c rtnl_fill_vfinfo).
import { describe, expect, it } from 'vitest';
import { Errno } from '../../rules/errors.js';
import {
  decodeLinkReply, decodeLinkRequest, encodeGetLinkRequest, encodeLinkReply, encodeRxModeRequest, encodeVfSetRequest,
  IFLA, IFLA_VF, RTEXT_FILTER, type LinkRequest,
} from '../../rules/netlink/link.js';
import { AttrWriter, buildMessage, NlmF, parseAttrs, parseMessages, Rtm, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { defaultVfSettings, type VfRequest, type VfSettings, type VfStats } from '../../rules/vf.js';
import { applyVfRequest, type VfContext } from '../../rules/vfvalidate.js';
import { formatVfLine, parseVfArgs, parseVfCommand } from '../../rules/vfsyntax.js';
import { captureLinks, loadLinks, type LinksFile } from '../corpus/captureLinks.js';
import { haveStrace } from '../helpers/nlcapture.js';

const corpus = loadLinks();

/** The capture's ifindexes become the channel's: the PF is 1, vfN stays N + 2. */
function channelMessage(file: LinksFile, hex: string): NlMessage {
  const b = Buffer.from(hex, 'hex');
  const idx = b.readInt32LE(20);
  if (idx === file.ifindex.uplink) b.writeInt32LE(1, 20);
  return parseMessages(b)[0]!;
}

function decoded(file: LinksFile, hex: string): LinkRequest {
  const r = decodeLinkRequest(channelMessage(file, hex));
  if (!r.ok) throw new Error(`decode failed: ${r.error.message}`);
  return r.value;
}

/** Zero seq/pid and the 2 pad bytes of every IFLA_VF_VLAN_INFO (iproute2 leaves them uninitialised). */
function normalize(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out.writeUInt32LE(0, 8);
  out.writeUInt32LE(0, 12);
  const walk = (start: number, end: number, depth: number) => {
    for (let off = start; off + 4 <= end; ) {
      const len = out.readUInt16LE(off);
      const type = out.readUInt16LE(off + 2) & 0x3fff;
      if (len < 4) return;
      if (depth === 0 && type === IFLA.VFINFO_LIST) walk(off + 4, off + len, 1);
      else if (depth === 1) walk(off + 4, off + len, 2);
      else if (depth === 2 && type === IFLA_VF.VLAN_LIST) walk(off + 4, off + len, 3);
      else if (depth === 3 && len >= 20) out.writeUInt16LE(0, off + 4 + 14);
      off += (len + 3) & ~3;
    }
  };
  walk(32, out.length, 0);
  return out;
}

const VF_EXPECT: Record<string, VfRequest[]> = {
  'vf 0 mac 02:00:00:00:00:01': [{ vf: 0, mac: '02:00:00:00:00:01' }],
  'vf 1 vlan 100 qos 3': [{ vf: 1, vlan: { vlan: 100, qos: 3, proto: 0x8100 } }],
  'vf 1 vlan 100 proto 802.1ad': [{ vf: 1, vlan: { vlan: 100, qos: 0, proto: 0x88a8 } }],
  'vf 0 spoofchk on': [{ vf: 0, spoofchk: true }],
  'vf 0 trust on': [{ vf: 0, trust: true }],
  'vf 0 state disable': [{ vf: 0, linkState: 2 }],
  'vf 0 rate 100': [{ vf: 0, txRate: 100 }],
  'vf 0 max_tx_rate 100 min_tx_rate 10': [{ vf: 0, rate: { min: 10, max: 100 } }],
  'vf 0 query_rss on': [{ vf: 0, rssQuery: true }],
  'vf 1 mac 02:00:00:00:00:02 vlan 7 qos 5 proto 802.1ad spoofchk off min_tx_rate 5 trust on max_tx_rate 50 state enable': [
    { vf: 1, mac: '02:00:00:00:00:02', vlan: { vlan: 7, qos: 5, proto: 0x88a8 }, spoofchk: false, trust: true, linkState: 1, rate: { min: 5, max: 50 } },
  ],
  // iproute2 sends one IFLA_VFINFO_LIST per clause, and nla_parse keeps only the last one.
  'vf 0 mac 02:00:00:00:00:01 vf 1 vlan 200 spoofchk on': [{ vf: 1, vlan: { vlan: 200, qos: 0, proto: 0x8100 }, spoofchk: true }],
};
const TWO_CLAUSES = 'vf 0 mac 02:00:00:00:00:01 vf 1 vlan 200 spoofchk on';

describe('ip link set DEV vf N ...: real iproute2 bytes', () => {
  const setvf = corpus.entries.filter((e) => e.kind === 'setvf');
  it('covers every setting, 802.1ad, a multi-setting clause and two vf clauses', () => {
    expect(setvf.map((e) => e.argv.slice(5).join(' ')).sort()).toEqual(Object.keys(VF_EXPECT).sort());
  });

  for (const e of setvf) {
    const args = e.argv.slice(5);
    it(args.join(' '), () => {
      const msg = decoded(corpus, e.message);
      expect(msg).toMatchObject({ op: 'setvf', hdr: { type: Rtm.NEWLINK, flags: NlmF.REQUEST | NlmF.ACK } });
      if (msg.op !== 'setvf') return;
      expect(msg.requests).toEqual(VF_EXPECT[args.join(' ')]);
      const theirs = Buffer.from(e.message, 'hex');
      theirs.writeInt32LE(1, 20);
      // Our text parser reads the command as iproute2 encoded it, and its requests encode to the same bytes.
      const parsed = parseVfCommand(args);
      if (!parsed.ok) throw parsed.error;
      expect(normalize(encodeVfSetRequest({ seq: 0 }, 1, parsed.value)).toString('hex')).toBe(normalize(theirs).toString('hex'));
      if (args.join(' ') === TWO_CLAUSES) {
        expect(parsed.value.map((r) => r.vf)).toEqual([0, 1]);
        expect(parsed.value[1]).toEqual(msg.requests[0]);
        return;
      }
      expect(parsed.value).toEqual(msg.requests);
      // And the decoded request encodes back to what iproute2 sent, attribute for attribute.
      expect(normalize(encodeVfSetRequest({ seq: 0 }, 1, msg.requests)).toString('hex')).toBe(normalize(theirs).toString('hex'));
    });
  }

  it('rx mode of a VF: ifi_change names the bit, ifi_flags its value', () => {
    const rx = corpus.entries.filter((e) => e.kind === 'rxmode').map((e) => decoded(corpus, e.message));
    expect(rx).toMatchObject([
      { op: 'rxmode', vf: 0, promisc: true },
      { op: 'rxmode', vf: 1, allmulti: true },
      { op: 'rxmode', vf: 0, promisc: false },
    ]);
    expect(rx[0]).not.toHaveProperty('allmulti');
    for (const e of corpus.entries.filter((x) => x.kind === 'rxmode')) {
      const m = decoded(corpus, e.message);
      if (m.op !== 'rxmode') continue;
      const ours = encodeRxModeRequest({ seq: 0 }, m.vf + 2, m);
      expect(normalize(ours).toString('hex')).toBe(normalize(Buffer.from(e.message, 'hex')).toString('hex'));
    }
  });

  it('GETLINK by name and link dumps', () => {
    const get = decoded(corpus, corpus.entries.find((e) => e.kind === 'get')!.message);
    expect(get).toMatchObject({ op: 'get', dump: false, name: 'uplink', extMask: RTEXT_FILTER.VF });
    const dumps = corpus.entries.filter((e) => e.kind === 'dump').map((e) => decoded(corpus, e.message));
    for (const d of dumps) expect(d).toMatchObject({ op: 'get', dump: true });
    // `ip link show` asks for VFs; a plain dump wants stats as well (no RTEXT_FILTER_SKIP_STATS).
    expect(dumps.every((d) => d.op === 'get' && d.extMask & RTEXT_FILTER.VF)).toBe(true);
    const byIndex = decodeLinkRequest(parseMessages(encodeGetLinkRequest({ seq: 3 }, 1))[0]!);
    expect(byIndex).toMatchObject({ ok: true, value: { op: 'get', dump: false, ifindex: 1, extMask: RTEXT_FILTER.VF | RTEXT_FILTER.SKIP_STATS } });
  });

  it("still matches what this machine's iproute2 sends (live capture)", async () => {
    if (!(await haveStrace())) throw new Error('strace is missing: scripts/deps.sh installs it');
    const live = await captureLinks();
    live.entries.forEach((l, i) => {
      const stored = corpus.entries[i]!;
      expect(l.argv).toEqual(stored.argv);
      const a = normalize(Buffer.from(l.message, 'hex'));
      const b = normalize(Buffer.from(stored.message, 'hex'));
      if (l.kind !== 'genl') {
        a.writeInt32LE(0, 20);
        b.writeInt32LE(0, 20);
      }
      expect(a.toString('hex')).toBe(b.toString('hex'));
    });
  });
});

// --- hand-built requests: the kernel's refusals ---

const ifinfo = (index: number, flags = 0, change = 0) => {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
};
const setlink = (attrs: AttrWriter, index = 1, flags = 0, change = 0, type: number = Rtm.SETLINK): NlMessage =>
  parseMessages(buildMessage({ type, flags: NlmF.REQUEST | NlmF.ACK, seq: 9, pid: 0 }, Buffer.concat([ifinfo(index, flags, change), attrs.toBuffer()])))[0]!;
const vfStruct = (...u32: number[]) => {
  const b = Buffer.alloc(u32.length * 4);
  u32.forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
  return b;
};
const vlanInfo = (vf: number, vlan: number, qos: number, proto: number, size = 16) => {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(vf, 0);
  b.writeUInt32LE(vlan, 4);
  b.writeUInt32LE(qos, 8);
  if (size >= 14) b.writeUInt16BE(proto, 12);
  return b;
};
const vfList = (body: (w: AttrWriter) => void) => new AttrWriter().nest(IFLA.VFINFO_LIST, (l) => l.nest(1, body));
const refused = (m: NlMessage) => {
  const r = decodeLinkRequest(m);
  if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r.value)}`);
  return { errno: r.error.errno, message: r.error.message };
};

describe('decodeLinkRequest refuses what the kernel refuses', () => {
  it('IFLA_VF_VLAN_INFO shorter than 16 bytes is EINVAL naming it', () => {
    const e = refused(setlink(vfList((i) => i.nest(IFLA_VF.VLAN_LIST, (l) => l.raw(1, vlanInfo(0, 5, 0, 0x8100, 12))))));
    expect(e).toEqual({ errno: Errno.EINVAL, message: 'IFLA_VF_VLAN_INFO is 12 bytes, the kernel needs 16' });
  });
  it('two VLAN_LIST entries are EOPNOTSUPP, none is EINVAL, a foreign entry is EINVAL', () => {
    const two = refused(setlink(vfList((i) => i.nest(IFLA_VF.VLAN_LIST, (l) => l.raw(1, vlanInfo(0, 5, 0, 0x88a8)).raw(1, vlanInfo(0, 6, 0, 0x88a8))))));
    expect(two.errno).toBe(Errno.EOPNOTSUPP);
    expect(refused(setlink(vfList((i) => i.nest(IFLA_VF.VLAN_LIST, () => {}))))).toMatchObject({ errno: Errno.EINVAL, message: 'IFLA_VF_VLAN_LIST is empty' });
    expect(refused(setlink(vfList((i) => i.nest(IFLA_VF.VLAN_LIST, (l) => l.raw(2, vlanInfo(0, 5, 0, 0x88a8))))))).toMatchObject({ errno: Errno.EINVAL });
  });
  it('IFLA_VF_BROADCAST is read-only (NLA_REJECT)', () => {
    expect(refused(setlink(vfList((i) => i.raw(IFLA_VF.BROADCAST, Buffer.alloc(32)))))).toMatchObject({ errno: Errno.EINVAL, message: 'IFLA_VF_BROADCAST is read-only' });
  });
  it('a short struct fails policy validation (ERANGE, as lib/nlattr.c validate_nla)', () => {
    expect(refused(setlink(vfList((i) => i.raw(IFLA_VF.MAC, Buffer.alloc(20)))))).toMatchObject({ errno: Errno.ERANGE, message: 'IFLA_VF_MAC is 20 bytes, the kernel needs 36' });
  });
  it('an IFLA_VFINFO_LIST entry that is not IFLA_VF_INFO, or an IFLA_VF_INFO without a setting, is EINVAL', () => {
    const foreign = new AttrWriter().nest(IFLA.VFINFO_LIST, (l) => l.nest(2, (i) => i.raw(IFLA_VF.SPOOFCHK, vfStruct(0, 1))));
    expect(refused(setlink(foreign)).errno).toBe(Errno.EINVAL);
    expect(refused(setlink(vfList(() => {}))).errno).toBe(Errno.EINVAL);
  });
  it('two VFs named inside one IFLA_VF_INFO are EINVAL', () => {
    const e = refused(setlink(vfList((i) => i.raw(IFLA_VF.SPOOFCHK, vfStruct(0, 1)).raw(IFLA_VF.TRUST, vfStruct(1, 1)))));
    expect(e.errno).toBe(Errno.EINVAL);
    expect(e.message).toMatch(/IFLA_VF_TRUST names vf 1 but an earlier attribute named vf 0/);
  });
  it('a repeated IFLA_VFINFO_LIST: only the last counts (nla_parse)', () => {
    const w = new AttrWriter()
      .nest(IFLA.VFINFO_LIST, (l) => l.nest(1, (i) => i.raw(IFLA_VF.SPOOFCHK, vfStruct(0, 1))))
      .nest(IFLA.VFINFO_LIST, (l) => l.nest(1, (i) => i.raw(IFLA_VF.TRUST, vfStruct(3, 1))));
    expect(decodeLinkRequest(setlink(w))).toMatchObject({ ok: true, value: { op: 'setvf', requests: [{ vf: 3, trust: true }] } });
  });
  it('IFLA_VF_VLAN and a VLAN_LIST in one IFLA_VF_INFO: the list, applied last, stays', () => {
    const r = decodeLinkRequest(setlink(vfList((i) => i.raw(IFLA_VF.VLAN, vfStruct(0, 10, 1)).nest(IFLA_VF.VLAN_LIST, (l) => l.raw(1, vlanInfo(0, 20, 2, 0x88a8))))));
    expect(r).toMatchObject({ ok: true, value: { requests: [{ vf: 0, vlan: { vlan: 20, qos: 2, proto: 0x88a8 } }] } });
  });
  it('unsupported PF attributes are EOPNOTSUPP naming them; IFLA_EXT_MASK is harmless', () => {
    expect(refused(setlink(new AttrWriter().u32(IFLA.MTU, 9000)))).toMatchObject({ errno: Errno.EOPNOTSUPP, message: 'IFLA_MTU on the PF is not supported by vpf' });
    expect(refused(setlink(new AttrWriter().string(IFLA.IFNAME, 'eth9'))).message).toMatch(/^IFLA_IFNAME/);
    expect(decodeLinkRequest(setlink(new AttrWriter().u32(IFLA.EXT_MASK, 1)))).toMatchObject({ ok: true, value: { op: 'setvf', requests: [] } });
  });
  it('PF flags: ignored without ifi_change, refused with it', () => {
    expect(decodeLinkRequest(setlink(new AttrWriter(), 1, 0x1, 0)).ok).toBe(true);
    expect(refused(setlink(new AttrWriter(), 1, 0x1, 0x1))).toMatchObject({ errno: Errno.EOPNOTSUPP, message: expect.stringMatching(/IFF_UP/) });
  });
  it('a VF accepts only rx-mode bits, and no VF list', () => {
    expect(refused(setlink(new AttrWriter(), 2, 0x1, 0x1)).message).toMatch(/IFF_UP of vf0/);
    expect(refused(setlink(vfList((i) => i.raw(IFLA_VF.TRUST, vfStruct(0, 1))), 3)).message).toMatch(/VF settings go to the PF/);
    expect(decodeLinkRequest(setlink(new AttrWriter(), 4, 0x300, 0x300))).toMatchObject({ ok: true, value: { op: 'rxmode', vf: 2, promisc: true, allmulti: true } });
  });
  it('other message types, link creation and unknown ifindexes', () => {
    expect(refused(setlink(new AttrWriter(), 1, 0, 0, Rtm.DELLINK)).errno).toBe(Errno.EOPNOTSUPP);
    expect(refused(setlink(new AttrWriter().nest(IFLA.LINKINFO, (l) => l.string(1, 'veth')))).errno).toBe(Errno.EOPNOTSUPP);
    expect(refused(setlink(new AttrWriter(), 0)).errno).toBe(Errno.ENODEV);
    const getNothing = parseMessages(buildMessage({ type: Rtm.GETLINK, flags: NlmF.REQUEST, seq: 1, pid: 0 }, ifinfo(0)))[0]!;
    expect(refused(getNothing).errno).toBe(Errno.EINVAL);
  });
});

// --- the reply ---

const stats: VfStats = { rxPackets: 1n, txPackets: 2n, rxBytes: 3n, txBytes: 4n, broadcast: 5n, multicast: 6n, rxDropped: 7n, txDropped: 2n ** 40n };
const vf0: VfSettings = { ...defaultVfSettings(), mac: '02:00:00:00:00:01', vlan: 100, qos: 3 };
const vf1: VfSettings = { ...defaultVfSettings(), vlan: 7, vlanProto: 0x88a8, minTxRate: 10, maxTxRate: 100, spoofchk: true, trust: true, linkState: 'disable' };
const pf = { ifindex: 1, name: 'uplink', mac: '02:aa:00:00:00:01', mtu: 1500, up: true };

function vfInfos(reply: Buffer) {
  const msg = parseMessages(reply)[0]!;
  const top = parseAttrs(msg.payload.subarray(16), 'top');
  const list = top.find((a) => a.type === IFLA.VFINFO_LIST);
  return { msg, top, infos: list ? parseAttrs(list.value, 'list').map((i) => parseAttrs(i.value, 'info')) : [] };
}

describe('GETLINK reply: rtnl_fill_vfinfo layout (legacy-path.md 3.2, 3.4)', () => {
  it('ifinfomsg, then rtnl_fill_ifinfo order with NUM_VF and VFINFO_LIST after the stats', () => {
    const { msg, top } = vfInfos(encodeLinkReply({ seq: 7, pid: 99 }, pf, { extMask: RTEXT_FILTER.VF, vfs: [vf0, vf1] }));
    expect(msg).toMatchObject({ type: Rtm.NEWLINK, seq: 7, pid: 99 });
    expect(msg.payload.readUInt16LE(2)).toBe(1); // ARPHRD_ETHER
    expect(msg.payload.readInt32LE(4)).toBe(1);
    const i = top.map((a) => a.type);
    expect(i.slice(i.indexOf(IFLA.ADDRESS))).toEqual([IFLA.ADDRESS, IFLA.BROADCAST, IFLA.STATS64, IFLA.STATS, IFLA.NUM_VF, IFLA.VFINFO_LIST, IFLA.XDP, IFLA.AF_SPEC]);
    expect(top.find((a) => a.type === IFLA.NUM_VF)!.value.readUInt32LE(0)).toBe(2);
  });

  it('each IFLA_VF_INFO: the kernel order and struct sizes, vf in every struct, proto big-endian', () => {
    const { infos } = vfInfos(encodeLinkReply({ seq: 1 }, pf, { extMask: RTEXT_FILTER.VF | RTEXT_FILTER.SKIP_STATS, vfs: [vf0, vf1] }));
    expect(infos).toHaveLength(2);
    const [a, b] = infos as [ReturnType<typeof parseAttrs>, ReturnType<typeof parseAttrs>];
    expect(a.map((x) => [x.type, x.value.length])).toEqual([[1, 36], [13, 32], [2, 12], [6, 12], [3, 8], [4, 8], [5, 8], [7, 8], [9, 8], [12, 20]]);
    expect(a[0]!.value.subarray(0, 10).toString('hex')).toBe('00000000' + '020000000001');
    expect(a[0]!.value.subarray(10).equals(Buffer.alloc(26))).toBe(true);
    expect(a[1]!.value.subarray(0, 6).toString('hex')).toBe('ffffffffffff');
    expect(a[2]!.value.toString('hex')).toBe('00000000' + '64000000' + '03000000');
    const vlanInfo1 = parseAttrs(b[9]!.value, 'vlan list')[0]!;
    expect(vlanInfo1.value.toString('hex')).toBe('01000000' + '07000000' + '00000000' + '88a8' + '0000');
    // The legacy IFLA_VF_VLAN carries vlan/qos for 802.1ad too.
    expect(b[2]!.value.toString('hex')).toBe('01000000' + '07000000' + '00000000');
    expect(b[3]!.value.toString('hex')).toBe('01000000' + '0a000000' + '64000000'); // RATE: vf, min, max
    expect(b[4]!.value.toString('hex')).toBe('01000000' + '64000000'); // TX_RATE = max
    expect(b.slice(5, 9).map((x) => x.value.readUInt32LE(4))).toEqual([1, 2, 0xffffffff, 1]); // spoofchk, link state, rss (-1: never set, as mlx5 leaves it), trust
  });

  it('IFLA_VF_STATS unless RTEXT_FILTER_SKIP_STATS: 8 u64, no IFLA_VF_STATS_PAD (x86-64)', () => {
    const { infos } = vfInfos(encodeLinkReply({ seq: 1 }, pf, { extMask: RTEXT_FILTER.VF, vfs: [vf0], stats: [stats] }));
    const st = infos[0]!.find((x) => x.type === IFLA_VF.STATS)!;
    const counters = parseAttrs(st.value, 'stats');
    expect(counters.map((c) => [c.type, c.value.length])).toEqual([[0, 8], [1, 8], [2, 8], [3, 8], [4, 8], [5, 8], [7, 8], [8, 8]]);
    expect(counters.map((c) => c.value.readBigUInt64LE(0))).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 2n ** 40n]);
  });

  it('no VF list without RTEXT_FILTER_VF; a VF entry is minimal', () => {
    expect(vfInfos(encodeLinkReply({ seq: 1 }, pf, { extMask: 0, vfs: [vf0] })).top.map((a) => a.type)).not.toContain(IFLA.VFINFO_LIST);
    const v = vfInfos(encodeLinkReply({ seq: 1, flags: NlmF.MULTI }, { ifindex: 2, name: 'vf0', mac: '02:00:00:00:00:01', mtu: 1500, up: false, promisc: true }, { extMask: 1 }));
    expect(v.msg.flags).toBe(NlmF.MULTI);
    expect(v.msg.payload.readUInt32LE(8)).toBe(0x2 | 0x1000 | 0x100); // BROADCAST|MULTICAST|PROMISC, not UP
  });

  it('decodeLinkReply reads it back', () => {
    const r = decodeLinkReply(parseMessages(encodeLinkReply({ seq: 1 }, pf, { extMask: RTEXT_FILTER.VF, vfs: [vf0, vf1], stats: [stats] }))[0]!);
    expect(r).toEqual({
      ok: true,
      value: { ifindex: 1, flags: expect.any(Number), name: 'uplink', mac: '02:aa:00:00:00:01', mtu: 1500, numVf: 2, vfs: [{ ...vf0, vf: 0, stats }, { ...vf1, vf: 1, stats: expect.objectContaining({ rxPackets: 0n }) }] },
    });
  });
});


describe('parseVfArgs: iproute2 syntax and errors', () => {
  it('abbreviations, defaults and the rate rules', () => {
    expect(parseVfArgs(['vf', '2', 'mac', '2:0:0:0:0:A', 'vl', '5', 'st', 'en'])).toEqual({ ok: true, value: { vf: 2, mac: '02:00:00:00:00:0a', vlan: { vlan: 5, qos: 0, proto: 0x8100 }, linkState: 1 } });
    // `rate` with the new API present sets max only when max_tx_rate is absent.
    expect(parseVfArgs(['vf', '0', 'rate', '30', 'min_tx_rate', '5'])).toEqual({ ok: true, value: { vf: 0, rate: { min: 5, max: 30 } } });
    expect(parseVfArgs(['vf', '0', 'rate', '30', 'max_tx_rate', '40'])).toEqual({ ok: true, value: { vf: 0, rate: { min: 0, max: 40 } } });
    expect(parseVfArgs(['vf', '0', 'max_tx_rate', '40'], { currentRate: () => ({ min: 7, max: 1 }) })).toEqual({ ok: true, value: { vf: 0, rate: { min: 7, max: 40 } } });
  });
  it.each([
    [['vf', 'x', 'trust', 'on'], 'argument "x" is wrong: Invalid "vf" value'],
    [['vf', '0', 'vlan', '4096'], 'argument "4096" is wrong: Invalid "vlan" value'],
    [['vf', '0', 'vlan', '5', 'proto', 'ip'], 'argument "ip" is wrong: protocol is invalid'],
    [['vf', '0', 'vlan', '5', 'proto', '0x800'], 'argument "0x800" is wrong: Invalid "vlan protocol" value - supported 802.1Q, 802.1ad'],
    [['vf', '0', 'spoofchk', 'yes'], 'argument of "spoofchk" must be one of "off", "on", not "yes"'],
    [['vf', '0', 'state', 'up'], 'argument "up" is wrong: Invalid "state" value'],
    [['vf', '0', 'mac', '02:00:00:00:00'], 'Invalid address length 5 - must be 6 bytes'],
    [['vf', '0', 'mac', 'zz:00:00:00:00:00'], '"zz" is invalid lladdr.'],
    [['vf', '0', 'min_tx_rate', '50', 'max_tx_rate', '10'], 'Invalid min_tx_rate 50 - must be <= max_tx_rate 10'],
    [['vf', '0'], 'Command line is not complete. Try option "help"'],
    [['vf', '0', 'trust'], 'Command line is not complete. Try option "help"'],
    [['vf', '0', 'trust', 'on', 'mtu', '9000'], 'either "dev" is duplicate, or "mtu" is a garbage.'],
  ])('%j', (args, message) => {
    expect(parseVfArgs(args)).toMatchObject({ ok: false, error: { errno: Errno.EINVAL, message } });
  });
});

describe('applyVfRequest: do_setvfinfo order, mlx5 checks', () => {
  const legacy: VfContext = { numVfs: 4, mode: 'legacy', emulate8021ad: true };
  const switchdev: VfContext = { ...legacy, mode: 'switchdev' };
  const base = defaultVfSettings();
  const errnoOf = (req: VfRequest, ctx = legacy) => {
    const r = applyVfRequest(base, req, ctx);
    return 'error' in r ? r.error.errno : 0;
  };

  it.each<[string, VfRequest, VfContext, number]>([
    ['vf past numVfs', { vf: 4, trust: true }, legacy, Errno.EINVAL],
    ['multicast MAC', { vf: 0, mac: '01:00:5e:00:00:01' }, legacy, Errno.EINVAL],
    ['zero MAC', { vf: 0, mac: '00:00:00:00:00:00' }, legacy, 0],
    ['vlan 4096', { vf: 0, vlan: { vlan: 4096, qos: 0, proto: 0x8100 } }, legacy, Errno.EINVAL],
    ['qos 8', { vf: 0, vlan: { vlan: 1, qos: 8, proto: 0x8100 } }, legacy, Errno.EINVAL],
    ['proto 0x9100', { vf: 0, vlan: { vlan: 1, qos: 0, proto: 0x9100 } }, legacy, Errno.EPROTONOSUPPORT],
    ['802.1ad emulated', { vf: 0, vlan: { vlan: 1, qos: 0, proto: 0x88a8 } }, legacy, 0],
    ['802.1ad not emulated', { vf: 0, vlan: { vlan: 1, qos: 0, proto: 0x88a8 } }, { ...legacy, emulate8021ad: false }, Errno.EPROTONOSUPPORT],
    ['max < min', { vf: 0, rate: { min: 50, max: 10 } }, legacy, Errno.EINVAL],
    ['max 0 = unlimited', { vf: 0, rate: { min: 50, max: 0 } }, legacy, 0],
    ['link state 3', { vf: 0, linkState: 3 }, legacy, Errno.EINVAL],
    ['switchdev: vlan', { vf: 0, vlan: { vlan: 5, qos: 0, proto: 0x8100 } }, switchdev, Errno.EOPNOTSUPP],
    ['switchdev: qos', { vf: 0, vlan: { vlan: 0, qos: 2, proto: 0x8100 } }, switchdev, Errno.EOPNOTSUPP],
    ['switchdev: vlan 0 qos 0', { vf: 0, vlan: { vlan: 0, qos: 0, proto: 0x8100 } }, switchdev, 0],
    ['switchdev: spoofchk', { vf: 0, spoofchk: true }, switchdev, Errno.EOPNOTSUPP],
    ['switchdev: trust', { vf: 0, trust: false }, switchdev, Errno.EOPNOTSUPP],
    ['switchdev: state', { vf: 0, linkState: 1 }, switchdev, Errno.EOPNOTSUPP],
    ['switchdev: mac', { vf: 0, mac: '02:00:00:00:00:09' }, switchdev, 0],
    ['switchdev: rate', { vf: 0, rate: { min: 1, max: 2 } }, switchdev, 0],
  ])('%s', (_name, req, ctx, errno) => {
    expect(errnoOf(req, ctx)).toBe(errno);
    const r = applyVfRequest(base, req, ctx);
    if ('error' in r) expect(r.error.message.length).toBeGreaterThan(10);
  });

  it('stops at the first error in kernel order, keeping what came before', () => {
    // MAC (1) and VLAN (2) apply, the rate (5) fails, trust (9) never runs.
    const r = applyVfRequest(base, { vf: 1, trust: true, rate: { min: 9, max: 3 }, vlan: { vlan: 10, qos: 1, proto: 0x8100 }, mac: '02:00:00:00:00:05' }, legacy);
    expect('error' in r && r.error.errno).toBe(Errno.EINVAL);
    expect(r.settings).toEqual({ ...base, mac: '02:00:00:00:00:05', vlan: 10, qos: 1 });
  });

  it('TX_RATE keeps min and is checked against it; the input is not modified', () => {
    const cur = { ...base, minTxRate: 20 };
    expect(applyVfRequest(cur, { vf: 0, txRate: 30 }, legacy)).toEqual({ settings: { ...cur, maxTxRate: 30 } });
    expect('error' in applyVfRequest(cur, { vf: 0, txRate: 10 }, legacy)).toBe(true);
    expect(cur.maxTxRate).toBe(0);
  });

  it('query_rss: a bare EOPNOTSUPP as mlx5 (no ndo_set_vf_rss_query_en), kept only where a host NIC took it', () => {
    const r = applyVfRequest(base, { vf: 0, spoofchk: true, rssQuery: true, trust: true }, legacy);
    expect('error' in r && [r.error.errno, r.error.message]).toEqual([Errno.EOPNOTSUPP, '']);
    // do_setvfinfo order: spoofchk (before) stays applied, trust (after) is never reached.
    expect(r.settings).toMatchObject({ spoofchk: true, trust: false });
    expect(r.settings.rssQuery).toBeUndefined();
    expect(applyVfRequest(base, { vf: 0, rssQuery: false }, { ...legacy, rssQuerySupported: true })).toEqual({ settings: { ...base, rssQuery: false } });
  });
});
