// RTM_NEWLINK / RTM_SETLINK / RTM_GETLINK for the legacy eswitch: VF settings
// (IFLA_VFINFO_LIST, include/uapi/linux/if_link.h struct ifla_vf_*), a VF's rx
// mode, and the GETLINK replies `ip link show` reads. Checks follow
// net/core/rtnetlink.c do_setlink / do_setvfinfo / ifla_vf_policy; the reply
// follows rtnl_fill_ifinfo / rtnl_fill_vf / rtnl_fill_vfinfo.
import { bytesToMac, macToBytes } from '../addr.js';
import { Errno, VpfError, attempt, type Result } from '../errors.js';
import { linkStateName, VLAN_PROTO_8021Q, type VfRequest, type VfSettings, type VfStats } from '../vf.js';
import { AttrWriter, buildMessage, NLA_HDRLEN, NlmF, parseAttrs, read, Rtm, type Attr, type NlHeader, type NlMessage } from './nlmsg.js';

/** include/uapi/linux/if_link.h IFLA_* (the ones this codec names). */
export const IFLA = {
  ADDRESS: 1, BROADCAST: 2, IFNAME: 3, MTU: 4, LINK: 5, QDISC: 6, STATS: 7, COST: 8, PRIORITY: 9, MASTER: 10,
  WIRELESS: 11, PROTINFO: 12, TXQLEN: 13, MAP: 14, WEIGHT: 15, OPERSTATE: 16, LINKMODE: 17, LINKINFO: 18,
  NET_NS_PID: 19, IFALIAS: 20, NUM_VF: 21, VFINFO_LIST: 22, STATS64: 23, VF_PORTS: 24, PORT_SELF: 25,
  AF_SPEC: 26, GROUP: 27, NET_NS_FD: 28, EXT_MASK: 29, PROMISCUITY: 30, NUM_TX_QUEUES: 31, NUM_RX_QUEUES: 32,
  CARRIER: 33, PHYS_PORT_ID: 34, CARRIER_CHANGES: 35, PHYS_SWITCH_ID: 36, LINK_NETNSID: 37, PHYS_PORT_NAME: 38,
  PROTO_DOWN: 39, GSO_MAX_SEGS: 40, GSO_MAX_SIZE: 41, PAD: 42, XDP: 43, EVENT: 44, NEW_NETNSID: 45,
  TARGET_NETNSID: 46, CARRIER_UP_COUNT: 47, CARRIER_DOWN_COUNT: 48, NEW_IFINDEX: 49, MIN_MTU: 50, MAX_MTU: 51,
  PROP_LIST: 52, ALT_IFNAME: 53, PERM_ADDRESS: 54, PROTO_DOWN_REASON: 55, PARENT_DEV_NAME: 56,
  PARENT_DEV_BUS_NAME: 57, GRO_MAX_SIZE: 58, TSO_MAX_SIZE: 59, TSO_MAX_SEGS: 60, ALLMULTI: 61,
} as const;

/** IFLA_VF_* inside IFLA_VF_INFO. */
export const IFLA_VF = {
  MAC: 1, VLAN: 2, TX_RATE: 3, SPOOFCHK: 4, LINK_STATE: 5, RATE: 6, RSS_QUERY_EN: 7, STATS: 8, TRUST: 9,
  IB_NODE_GUID: 10, IB_PORT_GUID: 11, VLAN_LIST: 12, BROADCAST: 13,
} as const;
export const IFLA_VF_INFO = 1;
export const IFLA_VF_VLAN_INFO = 1;
/** IFLA_VF_STATS_*: u64 each; PAD (6) is never emitted on x86-64 (see encodeVfInfo). */
export const IFLA_VF_STATS = { RX_PACKETS: 0, TX_PACKETS: 1, RX_BYTES: 2, TX_BYTES: 3, BROADCAST: 4, MULTICAST: 5, PAD: 6, RX_DROPPED: 7, TX_DROPPED: 8 } as const;

/** include/uapi/linux/rtnetlink.h RTEXT_FILTER_*. */
export const RTEXT_FILTER = { VF: 1, BRVLAN: 2, BRVLAN_COMPRESSED: 4, SKIP_STATS: 8 } as const;
/** include/uapi/linux/if.h net_device_flags used here. */
export const IFF = { UP: 0x1, BROADCAST: 0x2, RUNNING: 0x40, PROMISC: 0x100, ALLMULTI: 0x200, MULTICAST: 0x1000, LOWER_UP: 0x10000 } as const;
const ARPHRD_ETHER = 1;
const IF_OPER = { DOWN: 2, UP: 6 } as const;

/** The channel's PF (docs/protocol.md); vfN is N + 2 (rules/ports.ts). */
export const PF_IFINDEX = 1;
const IFINFOMSG_LEN = 16;
/** The kernel reads every VF index as u32 and refuses >= INT_MAX (do_setvfinfo). */
const INT_MAX = 0x7fffffff;

/** struct sizes, the policy's minimum lengths (ifla_vf_policy `.len = sizeof(...)`). */
const SIZE = { MAC: 36, BROADCAST: 32, VLAN: 12, VLAN_INFO: 16, TX_RATE: 8, RATE: 12, SETTING: 8, GUID: 16 } as const;

const IFLA_NAME: Record<number, string> = Object.fromEntries(Object.entries(IFLA).map(([k, v]) => [v, `IFLA_${k}`]));
const VF_NAME: Record<number, string> = Object.fromEntries(Object.entries(IFLA_VF).map(([k, v]) => [v, `IFLA_VF_${k}`]));
const iflaName = (t: number) => IFLA_NAME[t] ?? `IFLA attribute ${t}`;

export interface Ifinfomsg {
  family: number;
  type: number;
  index: number;
  flags: number;
  change: number;
}

export type LinkRequest =
  | { op: 'setvf'; hdr: NlHeader; requests: VfRequest[] }
  /** rx mode of vfN (what `ip link set dev vfN promisc on|off` / `allmulticast on|off` sends); absent = unchanged. */
  | { op: 'rxmode'; hdr: NlHeader; vf: number; promisc?: boolean; allmulti?: boolean }
  /** GETLINK: by ifindex, by name (IFLA_IFNAME / IFLA_ALT_IFNAME, ifindex 0), or a dump. */
  | { op: 'get'; hdr: NlHeader; dump: boolean; extMask: number; ifindex?: number; name?: string };

function readIfinfomsg(payload: Buffer): Ifinfomsg {
  if (payload.length < IFINFOMSG_LEN) throw new VpfError(Errno.EINVAL, `ifinfomsg needs ${IFINFOMSG_LEN} bytes, got ${payload.length}`);
  return {
    family: payload.readUInt8(0),
    type: payload.readUInt16LE(2),
    index: payload.readInt32LE(4),
    flags: payload.readUInt32LE(8),
    change: payload.readUInt32LE(12),
  };
}

function writeIfinfomsg(i: Ifinfomsg): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(i.family, 0);
  b.writeUInt16LE(i.type, 2);
  b.writeInt32LE(i.index, 4);
  b.writeUInt32LE(i.flags >>> 0, 8);
  b.writeUInt32LE(i.change >>> 0, 12);
  return b;
}

/**
 * A struct attribute shorter than its policy `.len`: lib/nlattr.c validate_nla
 * fails it with -ERANGE ("Attribute failed policy validation"); longer is fine
 * under the deprecated parser rtnetlink uses.
 */
function struct(a: Attr, name: string, size: number): Buffer {
  if (a.value.length < size) throw new VpfError(Errno.ERANGE, `${name} is ${a.value.length} bytes, the kernel needs ${size}`, name);
  return a.value;
}

/** NLA_U32 under the deprecated parser: at least 4 bytes (ERANGE), extra bytes ignored. */
function u32Min(a: Attr, name: string): number {
  return struct(a, name, 4).readUInt32LE(0);
}

/** NLA_STRING with `.len` = max: trailing NUL optional, longer is ERANGE. */
function nlaString(a: Attr, name: string, max: number): string {
  const end = a.value.indexOf(0);
  const s = a.value.subarray(0, end < 0 ? a.value.length : end);
  if (a.value.length === 0 || s.length > max) throw new VpfError(Errno.ERANGE, `${name}: string of ${s.length} bytes (at most ${max})`, name);
  return s.toString('latin1');
}

// --- IFLA_VF_INFO ---

/** Decodes one IFLA_VF_INFO as do_setvfinfo reads it. Keys are set in message order (encodeVfSetRequest keeps it). */
function decodeVfInfo(info: Attr, index: number): VfRequest {
  const where = `IFLA_VF_INFO #${index}`;
  const attrs = parseAttrs(info.value, where);
  let vf: number | undefined;
  // The kernel takes each struct's own vf field; one VfRequest holds one VF, so
  // two different VFs inside one IFLA_VF_INFO are refused rather than split.
  const vfOf = (b: Buffer, name: string): number => {
    const n = b.readUInt32LE(0);
    if (n >= INT_MAX) throw new VpfError(Errno.EINVAL, `${name}: vf ${n} is out of range`, name);
    if (vf !== undefined && n !== vf) throw new VpfError(Errno.EINVAL, `${where}: ${name} names vf ${n} but an earlier attribute named vf ${vf}; send one IFLA_VF_INFO per VF`, name);
    vf = n;
    return n;
  };
  const out: Partial<VfRequest> = {};
  let vlanFromList = false;
  let anySetting = false;
  for (const a of attrs) {
    const name = VF_NAME[a.type];
    switch (a.type) {
      case IFLA_VF.MAC: {
        const b = struct(a, name!, SIZE.MAC);
        vfOf(b, name!);
        out.mac = bytesToMac(b.subarray(4, 10));
        break;
      }
      case IFLA_VF.BROADCAST:
        // ifla_vf_policy: NLA_REJECT (read-only, reported by GETLINK).
        throw new VpfError(Errno.EINVAL, 'IFLA_VF_BROADCAST is read-only', name);
      case IFLA_VF.VLAN: {
        const b = struct(a, name!, SIZE.VLAN);
        vfOf(b, name!);
        // do_setvfinfo applies IFLA_VF_VLAN before IFLA_VF_VLAN_LIST, so the list's entry is what stays.
        if (!vlanFromList) out.vlan = { vlan: b.readUInt32LE(4), qos: b.readUInt32LE(8), proto: VLAN_PROTO_8021Q };
        break;
      }
      case IFLA_VF.VLAN_LIST: {
        if (a.value.length > 0 && a.value.length < NLA_HDRLEN) throw new VpfError(Errno.ERANGE, `${name} is ${a.value.length} bytes`, name);
        const entries = parseAttrs(a.value, name!);
        let first: Buffer | undefined;
        let n = 0;
        for (const e of entries) {
          if (e.type !== IFLA_VF_VLAN_INFO) throw new VpfError(Errno.EINVAL, `${name} holds attribute type ${e.type}, only IFLA_VF_VLAN_INFO`, name);
          if (e.value.length < SIZE.VLAN_INFO) throw new VpfError(Errno.EINVAL, `IFLA_VF_VLAN_INFO is ${e.value.length} bytes, the kernel needs ${SIZE.VLAN_INFO}`, 'IFLA_VF_VLAN_INFO');
          // MAX_VLAN_LIST_LEN is 1: a second entry is EOPNOTSUPP (do_setvfinfo).
          if (n >= 1) throw new VpfError(Errno.EOPNOTSUPP, `${name} has more than one IFLA_VF_VLAN_INFO; the kernel takes one (MAX_VLAN_LIST_LEN)`, name);
          first = e.value;
          n++;
        }
        if (!first) throw new VpfError(Errno.EINVAL, `${name} is empty`, name);
        vfOf(first, 'IFLA_VF_VLAN_INFO');
        out.vlan = { vlan: first.readUInt32LE(4), qos: first.readUInt32LE(8), proto: first.readUInt16BE(12) };
        vlanFromList = true;
        break;
      }
      case IFLA_VF.TX_RATE: {
        const b = struct(a, name!, SIZE.TX_RATE);
        vfOf(b, name!);
        out.txRate = b.readUInt32LE(4);
        break;
      }
      case IFLA_VF.RATE: {
        const b = struct(a, name!, SIZE.RATE);
        vfOf(b, name!);
        out.rate = { min: b.readUInt32LE(4), max: b.readUInt32LE(8) };
        break;
      }
      case IFLA_VF.SPOOFCHK:
      case IFLA_VF.TRUST:
      case IFLA_VF.RSS_QUERY_EN:
      case IFLA_VF.LINK_STATE: {
        const b = struct(a, name!, SIZE.SETTING);
        vfOf(b, name!);
        const v = b.readUInt32LE(4);
        // ndo_set_vf_spoofchk/trust/rss_query_en take a bool: any non-zero setting is "on".
        if (a.type === IFLA_VF.SPOOFCHK) out.spoofchk = v !== 0;
        else if (a.type === IFLA_VF.TRUST) out.trust = v !== 0;
        else if (a.type === IFLA_VF.RSS_QUERY_EN) out.rssQuery = v !== 0;
        else out.linkState = v;
        break;
      }
      case IFLA_VF.IB_NODE_GUID:
      case IFLA_VF.IB_PORT_GUID:
        struct(a, name!, SIZE.GUID);
        // handle_vf_guid: only InfiniBand devices have GUIDs.
        throw new VpfError(Errno.EOPNOTSUPP, `${name}: the PF is Ethernet, not InfiniBand`, name);
      case IFLA_VF.STATS:
        // NLA_NESTED in the policy, unused by do_setvfinfo.
        continue;
      default:
        // nla_parse_deprecated ignores types above IFLA_VF_MAX (and 0).
        continue;
    }
    anySetting = true;
  }
  // do_setvfinfo starts with err = -EINVAL: an IFLA_VF_INFO without a setting fails.
  if (!anySetting || vf === undefined) throw new VpfError(Errno.EINVAL, `${where} carries no VF setting`, 'IFLA_VF_INFO');
  return { vf, ...out } as VfRequest;
}

/** IFLA_VFINFO_LIST: every entry is IFLA_VF_INFO with at least a header (do_setlink). */
function decodeVfInfoList(list: Attr): VfRequest[] {
  if (list.value.length > 0 && list.value.length < NLA_HDRLEN) throw new VpfError(Errno.ERANGE, `IFLA_VFINFO_LIST is ${list.value.length} bytes`, 'IFLA_VFINFO_LIST');
  return parseAttrs(list.value, 'IFLA_VFINFO_LIST').map((e, i) => {
    if (e.type !== IFLA_VF_INFO) throw new VpfError(Errno.EINVAL, `IFLA_VFINFO_LIST holds attribute type ${e.type}, only IFLA_VF_INFO`, 'IFLA_VFINFO_LIST');
    return decodeVfInfo(e, i);
  });
}

// --- requests ---

/** Attributes a SET may carry that change nothing here (rtnetlink ignores them on set, or they only filter). */
const HARMLESS_ON_SET = new Set<number>([IFLA.EXT_MASK, IFLA.CARRIER_CHANGES]);
/** ifla_policy NLA_REJECT entries: the kernel refuses them with EINVAL. */
const REJECTED = new Set<number>([IFLA.PERM_ADDRESS, IFLA.TSO_MAX_SIZE, IFLA.TSO_MAX_SEGS, IFLA.ALLMULTI]);

function refuseOthers(attrs: Attr[], allowed: Set<number>, what: string): void {
  for (const a of attrs) {
    if (allowed.has(a.type) || HARMLESS_ON_SET.has(a.type) || a.type === 0) continue;
    if (REJECTED.has(a.type)) throw new VpfError(Errno.EINVAL, `${iflaName(a.type)} is read-only`, iflaName(a.type));
    throw new VpfError(Errno.EOPNOTSUPP, `${iflaName(a.type)} on ${what} is not supported by vpf`, iflaName(a.type));
  }
}

const flagNames = (bits: number) =>
  Object.entries(IFF)
    .filter(([, v]) => bits & v)
    .map(([k]) => `IFF_${k}`)
    .concat(bits & ~Object.values(IFF).reduce((x, y) => x | y, 0) ? [`0x${(bits & ~Object.values(IFF).reduce((x, y) => x | y, 0)).toString(16)}`] : [])
    .join('|');

function decodeSet(msg: NlMessage, hdr: NlHeader, ifi: Ifinfomsg, attrs: Attr[]): LinkRequest {
  if (msg.flags & NlmF.CREATE || attrs.some((a) => a.type === IFLA.LINKINFO)) {
    throw new VpfError(Errno.EOPNOTSUPP, 'creating links is not supported by vpf', 'IFLA_LINKINFO');
  }
  if (ifi.index <= 0) {
    // iproute2 resolves names before `ip link set`; by-name sets are not modelled.
    if (attrs.some((a) => a.type === IFLA.IFNAME || a.type === IFLA.ALT_IFNAME)) {
      throw new VpfError(Errno.EOPNOTSUPP, 'links are addressed by ifindex on this channel', 'IFLA_IFNAME');
    }
    throw new VpfError(Errno.ENODEV, `no link with ifindex ${ifi.index}`);
  }
  if (ifi.index === PF_IFINDEX) {
    refuseOthers(attrs, new Set([IFLA.VFINFO_LIST]), 'the PF');
    // Only ifi_change says which flags a modern sender changes; without it the flags are ignored here
    // (old senders meant "set all flags" by ifi_change 0, rtnl_dev_combine_flags, which vpf does not model).
    if (ifi.change !== 0) {
      throw new VpfError(Errno.EOPNOTSUPP, `changing the PF's interface flags (${flagNames(ifi.change)}) is not supported by vpf`);
    }
    // nla_parse: a repeated IFLA_VFINFO_LIST keeps only the last one.
    const lists = attrs.filter((a) => a.type === IFLA.VFINFO_LIST);
    const last = lists[lists.length - 1];
    return { op: 'setvf', hdr, requests: last ? decodeVfInfoList(last) : [] };
  }
  // vfN (ifindex N + 2): only its rx mode, which iproute2 sends as ifi_flags/ifi_change.
  const vf = ifi.index - 2;
  if (attrs.some((a) => a.type === IFLA.VFINFO_LIST)) {
    throw new VpfError(Errno.EOPNOTSUPP, `IFLA_VFINFO_LIST on vf${vf}: VF settings go to the PF (ifindex ${PF_IFINDEX})`, 'IFLA_VFINFO_LIST');
  }
  refuseOthers(attrs, new Set(), `vf${vf}`);
  if (ifi.change === 0 && ifi.flags !== 0) {
    // rtnl_dev_combine_flags would then replace every flag; vpf only models the rx mode bits.
    throw new VpfError(Errno.EOPNOTSUPP, `ifi_flags without ifi_change would replace all flags of vf${vf}; only IFF_PROMISC and IFF_ALLMULTI (with ifi_change) are supported`);
  }
  const other = ifi.change & ~(IFF.PROMISC | IFF.ALLMULTI);
  if (other) throw new VpfError(Errno.EOPNOTSUPP, `changing ${flagNames(other)} of vf${vf} is not supported by vpf; only IFF_PROMISC and IFF_ALLMULTI`);
  const out: LinkRequest = { op: 'rxmode', hdr, vf };
  if (ifi.change & IFF.PROMISC) out.promisc = (ifi.flags & IFF.PROMISC) !== 0;
  if (ifi.change & IFF.ALLMULTI) out.allmulti = (ifi.flags & IFF.ALLMULTI) !== 0;
  return out;
}

function decodeGet(msg: NlMessage, hdr: NlHeader, ifi: Ifinfomsg, attrs: Attr[]): LinkRequest {
  let extMask = 0;
  let name: string | undefined;
  for (const a of attrs) {
    if (a.type === IFLA.EXT_MASK) extMask = u32Min(a, 'IFLA_EXT_MASK');
    else if (a.type === IFLA.IFNAME) name = nlaString(a, 'IFLA_IFNAME', 15);
    else if (a.type === IFLA.ALT_IFNAME && name === undefined) name = nlaString(a, 'IFLA_ALT_IFNAME', 127);
    else if (a.type === IFLA.TARGET_NETNSID) throw new VpfError(Errno.EOPNOTSUPP, 'IFLA_TARGET_NETNSID: the channel has one namespace', 'IFLA_TARGET_NETNSID');
    // Other attributes (IFLA_MASTER, IFLA_LINKINFO filters...) are ignored, as the non-strict kernel path does.
  }
  const dump = (msg.flags & NlmF.DUMP) === NlmF.DUMP;
  if (dump) return { op: 'get', hdr, dump, extMask };
  // rtnl_getlink: by index if > 0, else by name, else EINVAL.
  if (ifi.index > 0) return { op: 'get', hdr, dump, extMask, ifindex: ifi.index };
  if (name !== undefined) return { op: 'get', hdr, dump, extMask, name };
  throw new VpfError(Errno.EINVAL, 'GETLINK needs an ifindex or IFLA_IFNAME');
}

function decodeRequest(msg: NlMessage): LinkRequest {
  const hdr: NlHeader = { type: msg.type, flags: msg.flags, seq: msg.seq, pid: msg.pid };
  if (msg.type !== Rtm.NEWLINK && msg.type !== Rtm.SETLINK && msg.type !== Rtm.GETLINK) {
    throw new VpfError(Errno.EOPNOTSUPP, `message type ${msg.type} is not a link request vpf handles`);
  }
  const dump = msg.type === Rtm.GETLINK && (msg.flags & NlmF.DUMP) === NlmF.DUMP;
  // rtnl_valid_dump_ifinfo_req: old iproute2 sends a 1-byte rtgenmsg for dumps.
  if (dump && msg.payload.length < IFINFOMSG_LEN) return { op: 'get', hdr, dump: true, extMask: 0 };
  const ifi = readIfinfomsg(msg.payload);
  const attrs = parseAttrs(msg.payload.subarray(IFINFOMSG_LEN), 'ifinfomsg attributes', IFINFOMSG_LEN);
  return msg.type === Rtm.GETLINK ? decodeGet(msg, hdr, ifi, attrs) : decodeSet(msg, hdr, ifi, attrs);
}

/** RTM_NEWLINK / RTM_SETLINK / RTM_GETLINK from the guest. Never throws: errors carry errno and an extack text. */
export function decodeLinkRequest(msg: NlMessage): Result<LinkRequest> {
  return attempt(() => decodeRequest(msg));
}

// --- request encoders (vpfctl speaking as a guest; the physical-VF backend speaking to a host PF) ---

function vfStruct(vf: number, ...fields: number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * fields.length);
  b.writeUInt32LE(vf >>> 0, 0);
  fields.forEach((f, i) => b.writeUInt32LE(f >>> 0, 4 + 4 * i));
  return b;
}

function macStruct(vf: number, mac: string): Buffer {
  const b = Buffer.alloc(SIZE.MAC);
  b.writeUInt32LE(vf >>> 0, 0);
  Buffer.from(macToBytes(mac)).copy(b, 4);
  return b;
}

function vlanInfoStruct(vf: number, vlan: number, qos: number, proto: number): Buffer {
  const b = Buffer.alloc(SIZE.VLAN_INFO);
  b.writeUInt32LE(vf >>> 0, 0);
  b.writeUInt32LE(vlan >>> 0, 4);
  b.writeUInt32LE(qos >>> 0, 8);
  b.writeUInt16BE(proto & 0xffff, 12);
  return b;
}

/**
 * The attributes of one IFLA_VF_INFO in the request's own key order (parseVfArgs
 * keeps command-line order, decodeLinkRequest message order), except IFLA_VF_RATE,
 * which iproute2 always appends last (ip/iplink.c iplink_parse_vf). 802.1Q goes as
 * IFLA_VF_VLAN, anything else as IFLA_VF_VLAN_LIST, as iproute2 does.
 */
function writeVfInfo(w: AttrWriter, r: VfRequest): void {
  for (const key of Object.keys(r) as (keyof VfRequest)[]) {
    switch (key) {
      case 'mac':
        if (r.mac !== undefined) w.raw(IFLA_VF.MAC, macStruct(r.vf, r.mac));
        break;
      case 'vlan':
        if (!r.vlan) break;
        if (r.vlan.proto === VLAN_PROTO_8021Q) w.raw(IFLA_VF.VLAN, vfStruct(r.vf, r.vlan.vlan, r.vlan.qos));
        else w.nest(IFLA_VF.VLAN_LIST, (l) => l.raw(IFLA_VF_VLAN_INFO, vlanInfoStruct(r.vf, r.vlan!.vlan, r.vlan!.qos, r.vlan!.proto)));
        break;
      case 'txRate':
        if (r.txRate !== undefined) w.raw(IFLA_VF.TX_RATE, vfStruct(r.vf, r.txRate));
        break;
      case 'spoofchk':
        if (r.spoofchk !== undefined) w.raw(IFLA_VF.SPOOFCHK, vfStruct(r.vf, r.spoofchk ? 1 : 0));
        break;
      case 'rssQuery':
        if (r.rssQuery !== undefined) w.raw(IFLA_VF.RSS_QUERY_EN, vfStruct(r.vf, r.rssQuery ? 1 : 0));
        break;
      case 'trust':
        if (r.trust !== undefined) w.raw(IFLA_VF.TRUST, vfStruct(r.vf, r.trust ? 1 : 0));
        break;
      case 'linkState':
        if (r.linkState !== undefined) w.raw(IFLA_VF.LINK_STATE, vfStruct(r.vf, r.linkState));
        break;
      default:
        break;
    }
  }
  if (r.rate) w.raw(IFLA_VF.RATE, vfStruct(r.vf, r.rate.min, r.rate.max));
}

/**
 * What `ip link set DEV vf N ...` sends: RTM_NEWLINK (hdr.type may say RTM_SETLINK,
 * which the kernel and this decoder also accept), REQUEST|ACK, one
 * IFLA_VFINFO_LIST { IFLA_VF_INFO } per request (one per `vf` clause).
 */
export function encodeVfSetRequest(hdr: Partial<NlHeader>, ifindex: number, requests: VfRequest[]): Buffer {
  const w = new AttrWriter();
  for (const r of requests) w.nest(IFLA.VFINFO_LIST, (l) => l.nest(IFLA_VF_INFO, (i) => writeVfInfo(i, r)));
  const ifi = writeIfinfomsg({ family: 0, type: 0, index: ifindex, flags: 0, change: 0 });
  return buildMessage({ type: hdr.type ?? Rtm.NEWLINK, flags: hdr.flags ?? NlmF.REQUEST | NlmF.ACK, seq: hdr.seq ?? 1, pid: hdr.pid ?? 0 }, Buffer.concat([ifi, w.toBuffer()]));
}

/** What `ip link set dev vfN promisc on|off` / `allmulticast on|off` sends (ifi_change names the bits). */
export function encodeRxModeRequest(hdr: Partial<NlHeader>, ifindex: number, mode: { promisc?: boolean; allmulti?: boolean }): Buffer {
  let flags = 0, change = 0;
  if (mode.promisc !== undefined) {
    change |= IFF.PROMISC;
    if (mode.promisc) flags |= IFF.PROMISC;
  }
  if (mode.allmulti !== undefined) {
    change |= IFF.ALLMULTI;
    if (mode.allmulti) flags |= IFF.ALLMULTI;
  }
  const ifi = writeIfinfomsg({ family: 0, type: 0, index: ifindex, flags, change });
  return buildMessage({ type: hdr.type ?? Rtm.NEWLINK, flags: hdr.flags ?? NlmF.REQUEST | NlmF.ACK, seq: hdr.seq ?? 1, pid: hdr.pid ?? 0 }, ifi);
}

/** RTM_GETLINK by ifindex (or a dump when ifindex is 0), with IFLA_EXT_MASK, as sriov-cni / iproute2 read VFs. */
export function encodeGetLinkRequest(hdr: Partial<NlHeader>, ifindex: number, extMask: number = RTEXT_FILTER.VF | RTEXT_FILTER.SKIP_STATS): Buffer {
  const ifi = writeIfinfomsg({ family: 0, type: 0, index: ifindex, flags: 0, change: 0 });
  const w = new AttrWriter().u32(IFLA.EXT_MASK, extMask);
  const flags = hdr.flags ?? (ifindex === 0 ? NlmF.REQUEST | NlmF.DUMP : NlmF.REQUEST);
  return buildMessage({ type: Rtm.GETLINK, flags, seq: hdr.seq ?? 1, pid: hdr.pid ?? 0 }, Buffer.concat([ifi, w.toBuffer()]));
}

// --- replies ---

/** struct rtnl_link_stats64 as dev_get_stats fills it (the counters vpf can know; the rest stay 0). */
export interface LinkStats {
  rxPackets: bigint;
  txPackets: bigint;
  rxBytes: bigint;
  txBytes: bigint;
  rxDropped?: bigint;
  txDropped?: bigint;
  multicast?: bigint;
}

/**
 * One netdev of the channel as rtnl_fill_ifinfo describes it. Only the first
 * five fields are required; the rest default to what a 6.1 guest shows for a
 * single-queue virtio-net netdev (see LINK_DEFAULTS).
 */
export interface LinkDesc {
  ifindex: number;
  /** IFLA_IFNAME (dev->name). */
  name: string;
  mac: string;
  mtu: number;
  up: boolean;
  promisc?: boolean;
  allmulti?: boolean;
  /** IFLA_PROP_LIST / IFLA_ALT_IFNAME: names GETLINK also resolves (netdev_name_node_lookup). */
  altNames?: readonly string[];
  /** dev->dev.parent: bus and device name (IFLA_PARENT_DEV_*); rtnl_fill_vf reports VFs only for a netdev with a parent. */
  parent?: { bus: string; dev: string };
  qdisc?: string;
  txqlen?: number;
  minMtu?: number;
  maxMtu?: number;
  numTxQueues?: number;
  numRxQueues?: number;
  stats?: LinkStats;
}

/** The netdev defaults: virtio_net's MTU range (ETH_MIN_MTU..ETH_MAX_MTU), one queue pair, Debian's default_qdisc fq_codel. */
const LINK_DEFAULTS = { qdisc: 'fq_codel', txqlen: 1000, minMtu: 68, maxMtu: 65535, numTxQueues: 1, numRxQueues: 1 } as const;
/** GSO_MAX_SIZE / GSO_MAX_SEGS / GRO_MAX_SIZE and TSO_LEGACY_MAX_SIZE / TSO_MAX_SEGS: what register_netdevice leaves on a driver that sets none. */
const GSO = { maxSegs: 65535, maxSize: 65536, groMaxSize: 65536, tsoMaxSize: 65536, tsoMaxSegs: 65535 } as const;

/** Where the PF hangs: the channel cannot know the guest's PCI address (devlink.ts echoes the guest's handle for the same reason). */
export const PF_PARENT = { bus: 'pci', dev: '0000:00:00.0' } as const;
/** The PF's IFLA_IFNAME is the uplink representor's tc name (rules/ports.ts); `pf` resolves to it as an alternative name. */
export const PF_NAME = 'uplink';
export const PF_ALT_NAME = 'pf';

/** A stable locally administered MAC per ifindex (02:76:70:66 = "vpf"): ARPHRD_ETHER netdevs always have one. */
const linkMac = (ifindex: number) => `02:76:70:66:${((ifindex >> 8) & 0xff).toString(16).padStart(2, '0')}:${(ifindex & 0xff).toString(16).padStart(2, '0')}`;

/**
 * Every netdev the guest sees on the route channel, in ifindex order (the
 * order rtnl_dump_ifinfo walks dev_index_head for small ifindexes): the PF,
 * which is also the uplink representor (ifindex 1), then vfN's representor
 * (ifindex N + 2). Callers fill in live state (up, rx mode, stats).
 */
export function channelLinks(numVfs: number): LinkDesc[] {
  const pf: LinkDesc = { ifindex: PF_IFINDEX, name: PF_NAME, altNames: [PF_ALT_NAME], mac: linkMac(PF_IFINDEX), mtu: 1500, up: true, parent: { ...PF_PARENT } };
  const reps = Array.from({ length: numVfs }, (_, n): LinkDesc => ({ ifindex: n + 2, name: `vf${n}`, mac: linkMac(n + 2), mtu: 1500, up: true }));
  return [pf, ...reps];
}

/** rtnl_getlink's lookup: by ifindex when > 0, else by name or alternative name (__dev_get_by_name sees both). */
export function lookupLink(numVfs: number, q: { ifindex?: number; name?: string }): LinkDesc | undefined {
  const all = channelLinks(numVfs);
  if (q.ifindex !== undefined && q.ifindex > 0) return all.find((l) => l.ifindex === q.ifindex);
  if (q.name === undefined) return undefined;
  return all.find((l) => l.name === q.name || l.altNames?.includes(q.name!));
}

export interface LinkReplyOpts {
  /** IFLA_EXT_MASK of the request: RTEXT_FILTER_VF adds the VF list, SKIP_STATS drops IFLA_VF_STATS. */
  extMask: number;
  /** The PF's VFs (index = VF number); give them only for the PF. */
  vfs?: VfSettings[];
  /** Counters per VF (zero when absent, as when the driver has no ndo_get_vf_stats). */
  stats?: (VfStats | undefined)[];
}

const BROADCAST_MAC = Buffer.alloc(6, 0xff);

function encodeVfInfo(w: AttrWriter, vf: number, s: VfSettings, stats: VfStats | undefined, extMask: number): void {
  w.nest(IFLA_VF_INFO, (i) => {
    // rtnl_fill_vfinfo order. The kernel's ifla_vf_broadcast is an uninitialised
    // stack struct past dev->addr_len; we zero those 26 bytes.
    const brd = Buffer.alloc(SIZE.BROADCAST);
    BROADCAST_MAC.copy(brd);
    const maxRate = s.maxTxRate;
    i.raw(IFLA_VF.MAC, macStruct(vf, s.mac))
      .raw(IFLA_VF.BROADCAST, brd)
      .raw(IFLA_VF.VLAN, vfStruct(vf, s.vlan, s.qos))
      .raw(IFLA_VF.RATE, vfStruct(vf, s.minTxRate, maxRate))
      .raw(IFLA_VF.TX_RATE, vfStruct(vf, maxRate))
      .raw(IFLA_VF.SPOOFCHK, vfStruct(vf, s.spoofchk ? 1 : 0))
      .raw(IFLA_VF.LINK_STATE, vfStruct(vf, ({ auto: 0, enable: 1, disable: 2 } as const)[s.linkState]))
      .raw(IFLA_VF.RSS_QUERY_EN, vfStruct(vf, s.rssQuery === undefined ? 0xffffffff : s.rssQuery ? 1 : 0))
      .raw(IFLA_VF.TRUST, vfStruct(vf, s.trust ? 1 : 0))
      .nest(IFLA_VF.VLAN_LIST, (l) => l.raw(IFLA_VF_VLAN_INFO, vlanInfoStruct(vf, s.vlan, s.qos, s.vlanProto)));
    if (!(extMask & RTEXT_FILTER.SKIP_STATS)) {
      // nla_put_u64_64bit: on x86-64 (CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS) no IFLA_VF_STATS_PAD is emitted.
      const st = stats;
      i.nest(IFLA_VF.STATS, (x) =>
        x
          .u64(IFLA_VF_STATS.RX_PACKETS, st?.rxPackets ?? 0n)
          .u64(IFLA_VF_STATS.TX_PACKETS, st?.txPackets ?? 0n)
          .u64(IFLA_VF_STATS.RX_BYTES, st?.rxBytes ?? 0n)
          .u64(IFLA_VF_STATS.TX_BYTES, st?.txBytes ?? 0n)
          .u64(IFLA_VF_STATS.BROADCAST, st?.broadcast ?? 0n)
          .u64(IFLA_VF_STATS.MULTICAST, st?.multicast ?? 0n)
          .u64(IFLA_VF_STATS.RX_DROPPED, st?.rxDropped ?? 0n)
          .u64(IFLA_VF_STATS.TX_DROPPED, st?.txDropped ?? 0n),
      );
    }
  });
}

/** IFLA_STATS64 (struct rtnl_link_stats64: 25 u64 in 6.1, up to rx_otherhost_dropped) and IFLA_STATS (its first 24 fields as u32, copy_rtnl_link_stats). */
function linkStats(st: LinkStats | undefined): { s64: Buffer; s32: Buffer } {
  // Field order of include/uapi/linux/if_link.h struct rtnl_link_stats64; vpf knows indexes 0-3, 6-8.
  const v = new Array<bigint>(25).fill(0n);
  if (st) {
    v[0] = st.rxPackets;
    v[1] = st.txPackets;
    v[2] = st.rxBytes;
    v[3] = st.txBytes;
    v[6] = st.rxDropped ?? 0n;
    v[7] = st.txDropped ?? 0n;
    v[8] = st.multicast ?? 0n;
  }
  const s64 = Buffer.alloc(25 * 8);
  const s32 = Buffer.alloc(24 * 4);
  v.forEach((x, i) => {
    s64.writeBigUInt64LE(x, i * 8);
    if (i < 24) s32.writeUInt32LE(Number(x & 0xffffffffn), i * 4);
  });
  return { s64, s32 };
}

/**
 * IFLA_AF_SPEC of a fresh netdev of a 6.1 kernel: AF_INET { IFLA_INET_CONF } then
 * AF_INET6 { FLAGS, CACHEINFO, CONF, STATS, ICMP6STATS, TOKEN, ADDR_GEN_MODE }, in
 * rtnl_af_ops registration order (inet_fill_link_af, inet6_fill_link_af). The
 * values are the sysctl defaults read from Debian's 6.1.0 kernel (a dummy netdev's
 * GETLINK reply), with the IPv6 MTU set to the link's; counters are 0: vpfd runs
 * no IP stack on these netdevs. `ip -d link show` prints `addrgenmode eui64` from it.
 */
function writeAfSpec(w: AttrWriter, mtu: number): void {
  const u32s = (xs: number[]) => {
    const b = Buffer.alloc(xs.length * 4);
    xs.forEach((x, i) => b.writeUInt32LE(x >>> 0, i * 4));
    return b;
  };
  const u64count = (n: number) => {
    // IFLA_INET6_STATS / ICMP6STATS: the first u64 is the number of fields (__snmp6_fill_stats64).
    const b = Buffer.alloc(n * 8);
    b.writeBigUInt64LE(BigInt(n), 0);
    return b;
  };
  const M = 0xffffffff;
  // IPV4_DEVCONF_* (33 values, index 0 = IPV4_DEVCONF_FORWARDING): accept_redirects, secure_redirects, send_redirects, shared_media, rp_filter 0, ...
  const inetConf = [0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10000, 1000, 0, 0, 0, 0, 1];
  // DEVCONF_* (59 values): forwarding 0, hop_limit 64, mtu6, accept_ra 1, ... disable_ipv6 0 (index 26), ...
  const inet6Conf = [0, 64, mtu, 1, 1, 1, 1, M, 4000, 1000, 0, 604800, 86400, 3, 600, 16, 0, 1, 1, 1, 60000, 0, 0, 0, 0, 0, 0, M, 0, 0, 10000, 1000, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 3600000, 0, 0, 1, 0, 0, 0, 0, 0, 1024, 0, 65535, M, 1, 0, 0];
  w.nest(IFLA.AF_SPEC, (af) => {
    af.nest(AF_INET, (a) => a.raw(IFLA_INET_CONF, u32s(inetConf)));
    af.nest(AF_INET6, (a) =>
      a
        .u32(IFLA_INET6.FLAGS, 0)
        // struct ifla_cacheinfo: max_reasm_len, tstamp, reachable_time (ms), retrans_time (ms).
        .raw(IFLA_INET6.CACHEINFO, u32s([65535, 0, 30000, 1000]))
        .raw(IFLA_INET6.CONF, u32s(inet6Conf))
        .raw(IFLA_INET6.STATS, u64count(37))
        .raw(IFLA_INET6.ICMP6STATS, u64count(7))
        .raw(IFLA_INET6.TOKEN, Buffer.alloc(16))
        .u8(IFLA_INET6.ADDR_GEN_MODE, 0),
    );
  });
}
const AF_INET = 2;
const AF_INET6 = 10;
const IFLA_INET_CONF = 1;
const IFLA_INET6 = { FLAGS: 1, CONF: 2, STATS: 3, CACHEINFO: 5, ICMP6STATS: 6, TOKEN: 7, ADDR_GEN_MODE: 8 } as const;
const IFLA_XDP_ATTACHED = 2;
/** struct rtnl_link_ifmap: 3 u64, u16, 2 u8, padded to 32 bytes. */
const IFMAP_LEN = 32;

/**
 * The RTM_NEWLINK a 6.1 kernel answers a GETLINK with (or sends per link in a
 * dump, NLM_F_MULTI in hdr.flags), attribute for attribute as rtnl_fill_ifinfo
 * fills it for a netdev without rtnl_link_ops (a NIC or a representor: no
 * IFLA_LINKINFO, no IFLA_LINK), checked against Debian's 6.1.0-57 (6.1.192)
 * reply for a dummy netdev. IFLA_NUM_VF + IFLA_VFINFO_LIST follow the stats
 * only with RTEXT_FILTER_VF and only for a netdev with a parent (rtnl_fill_vf);
 * `opts.vfs` says which VFs the PF has.
 */
export function encodeLinkReply(hdr: { seq: number; pid?: number; flags?: number }, link: LinkDesc, opts: LinkReplyOpts): Buffer {
  const d = { ...LINK_DEFAULTS, ...Object.fromEntries(Object.entries(link).filter(([, v]) => v !== undefined)) } as Required<LinkDesc>;
  let flags = IFF.BROADCAST | IFF.MULTICAST;
  if (link.up) flags |= IFF.UP | IFF.RUNNING | IFF.LOWER_UP;
  if (link.promisc) flags |= IFF.PROMISC;
  if (link.allmulti) flags |= IFF.ALLMULTI;
  const ifi = writeIfinfomsg({ family: 0, type: ARPHRD_ETHER, index: link.ifindex, flags, change: 0 });
  // A netdev that is up has carrier, one carrier-up event and its qdisc; a down one has "noop" (dev_deactivate).
  const w = new AttrWriter()
    .string(IFLA.IFNAME, link.name)
    .u32(IFLA.TXQLEN, d.txqlen)
    .u8(IFLA.OPERSTATE, link.up ? IF_OPER.UP : IF_OPER.DOWN)
    .u8(IFLA.LINKMODE, 0)
    .u32(IFLA.MTU, link.mtu)
    .u32(IFLA.MIN_MTU, d.minMtu)
    .u32(IFLA.MAX_MTU, d.maxMtu)
    .u32(IFLA.GROUP, 0)
    .u32(IFLA.PROMISCUITY, link.promisc ? 1 : 0)
    .u32(IFLA.ALLMULTI, link.allmulti ? 1 : 0)
    .u32(IFLA.NUM_TX_QUEUES, d.numTxQueues)
    .u32(IFLA.GSO_MAX_SEGS, GSO.maxSegs)
    .u32(IFLA.GSO_MAX_SIZE, GSO.maxSize)
    .u32(IFLA.GRO_MAX_SIZE, GSO.groMaxSize)
    .u32(IFLA.TSO_MAX_SIZE, GSO.tsoMaxSize)
    .u32(IFLA.TSO_MAX_SEGS, GSO.tsoMaxSegs)
    .u32(IFLA.NUM_RX_QUEUES, d.numRxQueues)
    .u8(IFLA.CARRIER, link.up ? 1 : 0)
    .string(IFLA.QDISC, link.up ? d.qdisc : 'noop')
    .u32(IFLA.CARRIER_CHANGES, link.up ? 1 : 0)
    .u32(IFLA.CARRIER_UP_COUNT, link.up ? 1 : 0)
    .u32(IFLA.CARRIER_DOWN_COUNT, 0)
    .u8(IFLA.PROTO_DOWN, 0)
    // nla_put_64bit: no IFLA_PAD on x86-64 (CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS).
    .raw(IFLA.MAP, Buffer.alloc(IFMAP_LEN))
    .raw(IFLA.ADDRESS, Buffer.from(macToBytes(link.mac)))
    .raw(IFLA.BROADCAST, BROADCAST_MAC);
  // rtnl_fill_stats is unconditional in 6.1 (RTEXT_FILTER_SKIP_STATS only drops the VF stats).
  const { s64, s32 } = linkStats(link.stats);
  w.raw(IFLA.STATS64, s64).raw(IFLA.STATS, s32);
  // The kernel asks dev->dev.parent; a caller that passes `vfs` describes a PF, which has one.
  if ((link.parent || opts.vfs) && opts.extMask & RTEXT_FILTER.VF) {
    const vfs = opts.vfs ?? [];
    w.u32(IFLA.NUM_VF, vfs.length);
    if (opts.vfs) w.nest(IFLA.VFINFO_LIST, (l) => vfs.forEach((s, n) => encodeVfInfo(l, n, s, opts.stats?.[n], opts.extMask)));
  }
  w.nest(IFLA.XDP, (x) => x.u8(IFLA_XDP_ATTACHED, 0));
  // IFLA_PERM_ADDRESS only when dev->perm_addr is set: virtio-net and representors leave it zero.
  writeAfSpec(w, link.mtu);
  // rtnl_fill_prop_list: nla_nest_start (NLA_F_NESTED), absent when there is no alternative name.
  if (link.altNames?.length) w.nest(IFLA.PROP_LIST, (p) => link.altNames!.forEach((n) => p.string(IFLA.ALT_IFNAME, n)), true);
  if (link.parent) w.string(IFLA.PARENT_DEV_NAME, link.parent.dev).string(IFLA.PARENT_DEV_BUS_NAME, link.parent.bus);
  return buildMessage({ type: Rtm.NEWLINK, flags: hdr.flags ?? 0, seq: hdr.seq, pid: hdr.pid ?? 0 }, Buffer.concat([ifi, w.toBuffer()]));
}

export type ReportedVf = VfSettings & { vf: number; stats?: VfStats };

export interface LinkReply {
  ifindex: number;
  flags: number;
  name?: string;
  mac?: string;
  mtu?: number;
  numVf?: number;
  vfs: ReportedVf[];
}

/** A setting the driver did not report is -1 (rtnl_fill_vfinfo presets); read it as off. */
const reported = (v: number) => v !== 0xffffffff && v !== 0;

function decodeReportedVf(info: Attr): ReportedVf {
  const m = new Map<number, Attr>();
  for (const a of parseAttrs(info.value, 'IFLA_VF_INFO')) m.set(a.type, a);
  const get = (t: number, size: number): Buffer | undefined => {
    const a = m.get(t);
    return a ? struct(a, VF_NAME[t]!, size) : undefined;
  };
  const mac = get(IFLA_VF.MAC, SIZE.MAC);
  if (!mac) throw new VpfError(Errno.EINVAL, 'IFLA_VF_INFO without IFLA_VF_MAC', 'IFLA_VF_MAC');
  const vf = mac.readUInt32LE(0);
  const vlan = get(IFLA_VF.VLAN, SIZE.VLAN);
  const listA = m.get(IFLA_VF.VLAN_LIST);
  const info0 = listA ? parseAttrs(listA.value, 'IFLA_VF_VLAN_LIST').find((e) => e.type === IFLA_VF_VLAN_INFO) : undefined;
  const vinfo = info0 ? struct(info0, 'IFLA_VF_VLAN_INFO', SIZE.VLAN_INFO) : undefined;
  const rate = get(IFLA_VF.RATE, SIZE.RATE);
  const txRate = get(IFLA_VF.TX_RATE, SIZE.TX_RATE);
  const setting = (t: number) => get(t, SIZE.SETTING)?.readUInt32LE(4);
  const out: ReportedVf = {
    vf,
    mac: bytesToMac(mac.subarray(4, 10)),
    vlan: vinfo ? vinfo.readUInt32LE(4) : (vlan?.readUInt32LE(4) ?? 0),
    qos: vinfo ? vinfo.readUInt32LE(8) : (vlan?.readUInt32LE(8) ?? 0),
    vlanProto: vinfo ? vinfo.readUInt16BE(12) || VLAN_PROTO_8021Q : VLAN_PROTO_8021Q,
    spoofchk: reported(setting(IFLA_VF.SPOOFCHK) ?? 0),
    trust: reported(setting(IFLA_VF.TRUST) ?? 0),
    linkState: linkStateName(setting(IFLA_VF.LINK_STATE) ?? 0) ?? 'auto',
    maxTxRate: rate ? rate.readUInt32LE(8) : (txRate?.readUInt32LE(4) ?? 0),
    minTxRate: rate ? rate.readUInt32LE(4) : 0,
    promisc: false,
    allmulti: false,
  };
  // -1 (or absent): the driver never reported it (mlx5 has no rss query setting).
  const rss = setting(IFLA_VF.RSS_QUERY_EN);
  if (rss !== undefined && rss !== 0xffffffff) out.rssQuery = rss !== 0;
  const st = m.get(IFLA_VF.STATS);
  if (st) {
    const s = new Map<number, bigint>();
    for (const a of parseAttrs(st.value, 'IFLA_VF_STATS')) if (a.value.length >= 8) s.set(a.type, a.value.readBigUInt64LE(0));
    out.stats = {
      rxPackets: s.get(IFLA_VF_STATS.RX_PACKETS) ?? 0n,
      txPackets: s.get(IFLA_VF_STATS.TX_PACKETS) ?? 0n,
      rxBytes: s.get(IFLA_VF_STATS.RX_BYTES) ?? 0n,
      txBytes: s.get(IFLA_VF_STATS.TX_BYTES) ?? 0n,
      broadcast: s.get(IFLA_VF_STATS.BROADCAST) ?? 0n,
      multicast: s.get(IFLA_VF_STATS.MULTICAST) ?? 0n,
      rxDropped: s.get(IFLA_VF_STATS.RX_DROPPED) ?? 0n,
      txDropped: s.get(IFLA_VF_STATS.TX_DROPPED) ?? 0n,
    };
  }
  return out;
}

/** Reads an RTM_NEWLINK reply (ours, or a real host PF's) back: name, VF count and every VF's settings. */
export function decodeLinkReply(msg: NlMessage): Result<LinkReply> {
  return attempt(() => {
    if (msg.type !== Rtm.NEWLINK) throw new VpfError(Errno.EINVAL, `message type ${msg.type} is not RTM_NEWLINK`);
    const ifi = readIfinfomsg(msg.payload);
    const out: LinkReply = { ifindex: ifi.index, flags: ifi.flags, vfs: [] };
    for (const a of parseAttrs(msg.payload.subarray(IFINFOMSG_LEN), 'ifinfomsg attributes')) {
      if (a.type === IFLA.IFNAME) out.name = read.string(a, 'IFLA_IFNAME', 15);
      else if (a.type === IFLA.MTU) out.mtu = u32Min(a, 'IFLA_MTU');
      else if (a.type === IFLA.ADDRESS && a.value.length === 6) out.mac = bytesToMac(a.value);
      else if (a.type === IFLA.NUM_VF) out.numVf = u32Min(a, 'IFLA_NUM_VF');
      else if (a.type === IFLA.VFINFO_LIST) {
        out.vfs = parseAttrs(a.value, 'IFLA_VFINFO_LIST')
          .filter((e) => e.type === IFLA_VF_INFO)
          .map(decodeReportedVf);
      }
    }
    return out;
  });
}
