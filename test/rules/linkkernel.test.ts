// The GETLINK reply against a real 6.1 kernel's: the bytes below are what
// Debian's 6.1.0-57-amd64 (6.1.192) answered a link dump (IFLA_EXT_MASK =
// RTEXT_FILTER_VF) for `ip link add d0 type dummy; ip link property add dev d0
// altname foobar; ip link set d0 up`, read under QEMU. Our encoder, given the
// same netdev, must emit the same attributes in the same order with the same
// lengths, and the same bytes wherever the two netdevs agree.
import { describe, expect, it } from 'vitest';
import { channelLinks, encodeLinkReply, IFLA, lookupLink, PF_IFINDEX, RTEXT_FILTER, type LinkDesc } from '../../rules/netlink/link.js';
import { NlmF, parseAttrs, parseMessages, type Attr } from '../../rules/netlink/nlmsg.js';
import { defaultVfSettings } from '../../rules/vf.js';

const KERNEL_D0 =
  '980500001000020007000000900000000000010005000000c300010000000000070003006430000008000d00e80300000500100000000000050011000000000008000400dc0500000800320000000000080033000000000008001b000000000008001e000000000008003d000000000008001f000100000008002800ffff0000080029000000010008003a000000010008003b000000010008003c00ffff0000080020000100000005002100010000000c0006006e6f717565756500080023000000000008002f00000000000800300000000000050027000000000024000e0000000000000000000000000000000000000000000000000000000000000000000a0001001eeafa61c24f00000a000200ffffffffffff0000cc0017000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000640007000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000c002b000500020000000000100012000a00010064756d6d7900000024031a008c00020088000100000000000000000000000000010000000100000001000000010000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010270000e8030000000000000000000000000000000000000100000094020a00080001000000000014000500ffff00004d010000bc7c0000e8030000f00002000000000040000000dc05000001000000010000000100000001000000ffffffffa00f0000e803000000000000803a0900805101000300000058020000100000000000000001000000010000000100000060ea0000000000000000000000000000000000000000000001000000ffffffff000000000000000010270000e8030000010000000000000000000000010000000000000000000000010000000000000000000000000000000000000080ee360000000000000000000100000000000000000000000000000000000000000000000004000000000000ffff0000ffffffff0100000000000000000000002c01030025000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003c000600070000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000014000700000000000000000000000000000000000500080000000000100034800b003500666f6f6261720000';

const top = (b: Buffer) => parseAttrs(parseMessages(b)[0]!.payload.subarray(16), 'ifinfomsg');
const shape = (as: Attr[]): unknown[] => as.map((a) => [a.type, a.nested, a.value.length]);
const byType = (as: Attr[], t: number) => as.find((a) => a.type === t)!;

/** d0 as the kernel had it: a dummy netdev (no qdisc of its own, MTU range 0..0, TSO legacy size). */
const d0: LinkDesc = { ifindex: 5, name: 'd0', altNames: ['foobar'], mac: '1e:ea:fa:61:c2:4f', mtu: 1500, up: true, qdisc: 'noqueue', minMtu: 0, maxMtu: 0 };

describe('GETLINK reply = Linux 6.1 rtnl_fill_ifinfo', () => {
  const kernel = top(Buffer.from(KERNEL_D0, 'hex'));
  // The dummy has rtnl_link_ops (IFLA_LINKINFO "dummy"); a NIC or a representor has none.
  const kernelNic = kernel.filter((a) => a.type !== IFLA.LINKINFO);
  const ours = top(encodeLinkReply({ seq: 1, flags: NlmF.MULTI }, d0, { extMask: RTEXT_FILTER.VF }));

  it('the same attributes, in the same order, with the same lengths (AF_SPEC nests included)', () => {
    expect(shape(ours)).toEqual(shape(kernelNic));
    const afs = (as: Attr[]) => parseAttrs(byType(as, IFLA.AF_SPEC).value, 'af').map((f) => [f.type, shape(parseAttrs(f.value, 'f'))]);
    expect(afs(ours)).toEqual(afs(kernelNic));
  });

  it('the same bytes where the two netdevs agree', () => {
    // Not compared: OPERSTATE (a dummy is UNKNOWN, a NIC UP), the carrier counters, AF_SPEC (the capture guest disabled IPv6; timestamps).
    const skip = new Set<number>([IFLA.OPERSTATE, IFLA.CARRIER_CHANGES, IFLA.CARRIER_UP_COUNT, IFLA.AF_SPEC]);
    const bytes = (as: Attr[]) => as.filter((a) => !skip.has(a.type)).map((a) => [a.type, a.value.toString('hex')]);
    expect(bytes(ours)).toEqual(bytes(kernelNic));
  });

  it('IFLA_INET6_ADDR_GEN_MODE is eui64, as `ip -d link show` prints it', () => {
    const inet6 = parseAttrs(byType(ours, IFLA.AF_SPEC).value, 'af').find((f) => f.type === 10)!;
    expect(parseAttrs(inet6.value, 'inet6').find((a) => a.type === 8)!.value).toEqual(Buffer.from([0]));
  });
});

describe('the channel netdevs (contract C3)', () => {
  it('ifindex 1 is the PF named uplink with altname pf; vfN is ifindex N + 2', () => {
    const all = channelLinks(2);
    expect(all.map((l) => [l.ifindex, l.name, l.altNames ?? []])).toEqual([[1, 'uplink', ['pf']], [2, 'vf0', []], [3, 'vf1', []]]);
    expect(new Set(all.map((l) => l.mac)).size).toBe(3);
  });

  it('lookupLink resolves ifindex, name and alternative name, and nothing else', () => {
    expect(lookupLink(2, { ifindex: 3 })?.name).toBe('vf1');
    expect(lookupLink(2, { name: 'pf' })?.ifindex).toBe(PF_IFINDEX);
    expect(lookupLink(2, { name: 'uplink' })?.ifindex).toBe(PF_IFINDEX);
    expect(lookupLink(2, { name: 'vf1' })?.ifindex).toBe(3);
    expect(lookupLink(2, { name: 'vf2' })).toBeUndefined();
    expect(lookupLink(2, { ifindex: 4 })).toBeUndefined();
    expect(lookupLink(2, {})).toBeUndefined();
  });

  it('VF info only on the PF, only with RTEXT_FILTER_VF; the PF names its parent, altname in IFLA_PROP_LIST', () => {
    const [pf, rep] = channelLinks(1) as [LinkDesc, LinkDesc];
    const vfs = [defaultVfSettings()];
    const types = (l: LinkDesc, extMask: number) => top(encodeLinkReply({ seq: 1 }, l, { extMask, ...(l === pf ? { vfs } : {}) })).map((a) => a.type);
    expect(types(pf, RTEXT_FILTER.VF)).toEqual(expect.arrayContaining([IFLA.NUM_VF, IFLA.VFINFO_LIST, IFLA.PROP_LIST, IFLA.PARENT_DEV_NAME, IFLA.PARENT_DEV_BUS_NAME]));
    expect(types(pf, 0)).not.toContain(IFLA.NUM_VF);
    expect(types(rep, RTEXT_FILTER.VF)).not.toContain(IFLA.NUM_VF);
    expect(types(rep, RTEXT_FILTER.VF)).not.toContain(IFLA.PROP_LIST);
    const alt = parseAttrs(byType(top(encodeLinkReply({ seq: 1 }, pf, { extMask: 0 })), IFLA.PROP_LIST).value, 'props');
    expect(alt.map((a) => [a.type, a.value.toString()])).toEqual([[IFLA.ALT_IFNAME, 'pf\0']]);
  });

  it('counters go to IFLA_STATS64 and, truncated to 32 bits, IFLA_STATS', () => {
    const [pf] = channelLinks(0) as [LinkDesc];
    const as = top(encodeLinkReply({ seq: 1 }, { ...pf, stats: { rxPackets: 5n, txPackets: 6n, rxBytes: 2n ** 32n + 7n, txBytes: 8n, txDropped: 9n } }, { extMask: RTEXT_FILTER.SKIP_STATS }));
    const s64 = byType(as, IFLA.STATS64).value;
    expect([0, 1, 2, 3, 7].map((i) => s64.readBigUInt64LE(i * 8))).toEqual([5n, 6n, 2n ** 32n + 7n, 8n, 9n]);
    expect([0, 1, 2, 3, 7].map((i) => byType(as, IFLA.STATS).value.readUInt32LE(i * 4))).toEqual([5, 6, 7, 8, 9]);
  });
});
