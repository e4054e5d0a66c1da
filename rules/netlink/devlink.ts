// The generic-netlink subset the `devlink` tool needs for the eswitch mode: the
// nlctrl family lookup (CTRL_CMD_GETFAMILY "devlink", include/uapi/linux/genetlink.h,
// answered as net/netlink/genetlink.c ctrl_fill_info does) and DEVLINK_CMD_GET /
// ESWITCH_GET / ESWITCH_SET (include/uapi/linux/devlink.h, net/devlink/dev.c
// devlink_nl_eswitch_fill). The guest's virtio PF has no devlink instance, so the
// channel carries these messages and vpfd answers for the virtual PF.
import { Errno, VpfError, attempt, type Result } from '../errors.js';
import type { EswitchModeName } from '../vf.js';
import { AttrWriter, buildMessage, NlmF, parseAttrs, read, type Attr, type NlHeader, type NlMessage } from './nlmsg.js';

/** GENL_ID_CTRL: the one fixed generic netlink id (nlctrl). */
export const GENL_ID_CTRL = 0x10;
/**
 * The id vpf gives the devlink family on the channel. The kernel hands family
 * ids out dynamically from GENL_START_ALLOC (0x13) to GENL_MAX_ID (1023), below
 * which 0x10-0x12 are fixed; tools always resolve the name first, so any id in
 * that range works. 0x100 is also above every RTM_* type (RTM_MAX 123), so on a
 * channel that carries rtnetlink too, nlmsg_type alone tells the two apart
 * (only GENL_ID_CTRL = 0x10 shares its number with RTM_NEWLINK).
 */
export const DEVLINK_GENL_ID = 0x100;
export const DEVLINK_GENL_NAME = 'devlink';
export const DEVLINK_GENL_VERSION = 1;
/** DEVLINK_ATTR_MAX of the uapi header followed (iproute2 6.1 / Linux 6.1); reported as CTRL_ATTR_MAXATTR. */
export const DEVLINK_ATTR_MAX = 176;

export const CTRL_CMD = { NEWFAMILY: 1, DELFAMILY: 2, GETFAMILY: 3 } as const;
export const CTRL_ATTR = { FAMILY_ID: 1, FAMILY_NAME: 2, VERSION: 3, HDRSIZE: 4, MAXATTR: 5, OPS: 6, MCAST_GROUPS: 7 } as const;
/** nlctrl's own genl version (genetlink.c genl_ctrl .version = 0x2), put in its replies. */
const CTRL_VERSION = 2;

export const DEVLINK_CMD = { GET: 1, SET: 2, NEW: 3, DEL: 4, PORT_GET: 5, ESWITCH_GET: 29, ESWITCH_SET: 30 } as const;
export const DEVLINK_ATTR = { BUS_NAME: 1, DEV_NAME: 2, ESWITCH_MODE: 25, ESWITCH_INLINE_MODE: 26, ESWITCH_ENCAP_MODE: 62 } as const;

export const ESWITCH_MODES = ['legacy', 'switchdev'] as const;
export const INLINE_MODES = ['none', 'link', 'network', 'transport'] as const;
export const ENCAP_MODES = ['none', 'basic'] as const;
export type InlineModeName = (typeof INLINE_MODES)[number];
export type EncapModeName = (typeof ENCAP_MODES)[number];

const GENLMSG_LEN = 4;

/** A devlink handle: `pci/0000:00:00.0` is bus "pci", dev "0000:00:00.0". */
export interface DevlinkHandle {
  bus: string;
  dev: string;
}

export interface EswitchAttrs {
  mode?: EswitchModeName;
  inlineMode?: InlineModeName;
  encapMode?: EncapModeName;
}

export type DevlinkRequest =
  /** CTRL_CMD_GETFAMILY for "devlink" (by name or by our id). */
  | { cmd: 'getfamily'; hdr: NlHeader }
  /** DEVLINK_CMD_GET: one device, or all (dump). */
  | { cmd: 'get'; hdr: NlHeader; dump: boolean; handle?: DevlinkHandle }
  | ({ cmd: 'eswitch-get' | 'eswitch-set'; hdr: NlHeader } & DevlinkHandle & EswitchAttrs);

interface Genl {
  cmd: number;
  version: number;
  attrs: Attr[];
}

function readGenl(msg: NlMessage): Genl {
  if (msg.payload.length < GENLMSG_LEN) throw new VpfError(Errno.EINVAL, `genlmsghdr needs ${GENLMSG_LEN} bytes, got ${msg.payload.length}`);
  return { cmd: msg.payload.readUInt8(0), version: msg.payload.readUInt8(1), attrs: parseAttrs(msg.payload.subarray(GENLMSG_LEN), 'genetlink attributes', GENLMSG_LEN) };
}

const lastOf = (attrs: Attr[], type: number) => attrs.filter((a) => a.type === type).pop();

function decodeCtrl(msg: NlMessage, hdr: NlHeader): DevlinkRequest {
  const g = readGenl(msg);
  if (g.cmd !== CTRL_CMD.GETFAMILY) throw new VpfError(Errno.EOPNOTSUPP, `nlctrl command ${g.cmd} is not supported by vpf; only CTRL_CMD_GETFAMILY`);
  if ((msg.flags & NlmF.DUMP) === NlmF.DUMP) return { cmd: 'getfamily', hdr };
  // ctrl_getfamily: by CTRL_ATTR_FAMILY_ID, else by CTRL_ATTR_FAMILY_NAME, else EINVAL; unknown is ENOENT.
  const id = lastOf(g.attrs, CTRL_ATTR.FAMILY_ID);
  if (id) {
    const n = read.u16(id, 'CTRL_ATTR_FAMILY_ID');
    if (n !== DEVLINK_GENL_ID) throw new VpfError(Errno.ENOENT, `no generic netlink family with id ${n}`);
    return { cmd: 'getfamily', hdr };
  }
  const nameA = lastOf(g.attrs, CTRL_ATTR.FAMILY_NAME);
  if (!nameA) throw new VpfError(Errno.EINVAL, 'CTRL_CMD_GETFAMILY needs CTRL_ATTR_FAMILY_ID or CTRL_ATTR_FAMILY_NAME');
  const name = read.string(nameA, 'CTRL_ATTR_FAMILY_NAME', 15);
  if (name !== DEVLINK_GENL_NAME) throw new VpfError(Errno.ENOENT, `no generic netlink family '${name}' on this channel; only devlink`);
  return { cmd: 'getfamily', hdr };
}

function enumU8<T extends string>(a: Attr | undefined, name: string, names: readonly T[], u16 = false): T | undefined {
  if (!a) return undefined;
  const v = u16 ? read.u16(a, name) : read.u8(a, name);
  // devlink_nl_policy: NLA_POLICY_RANGE over the enum, out of range is ERANGE ("integer out of range").
  if (v >= names.length) throw new VpfError(Errno.ERANGE, `${name} ${v} is out of range (0-${names.length - 1})`, name);
  return names[v];
}

function handleOf(attrs: Attr[], required: boolean): DevlinkHandle | undefined {
  const bus = lastOf(attrs, DEVLINK_ATTR.BUS_NAME);
  const dev = lastOf(attrs, DEVLINK_ATTR.DEV_NAME);
  if (!bus || !dev) {
    // devlink_get_from_attrs: both names are needed.
    if (required || bus || dev) throw new VpfError(Errno.EINVAL, 'DEVLINK_ATTR_BUS_NAME and DEVLINK_ATTR_DEV_NAME are required', bus ? 'DEVLINK_ATTR_DEV_NAME' : 'DEVLINK_ATTR_BUS_NAME');
    return undefined;
  }
  return { bus: read.string(bus, 'DEVLINK_ATTR_BUS_NAME', 255), dev: read.string(dev, 'DEVLINK_ATTR_DEV_NAME', 255) };
}

function decodeDevlink(msg: NlMessage, hdr: NlHeader): DevlinkRequest {
  const g = readGenl(msg);
  for (const a of g.attrs) {
    // Strict genetlink validation: types past the policy's maxattr are refused.
    if (a.type > DEVLINK_ATTR_MAX || a.type === 0) throw new VpfError(Errno.EINVAL, `Unknown attribute type ${a.type}`, `devlink attribute ${a.type}`);
  }
  const dump = (msg.flags & NlmF.DUMP) === NlmF.DUMP;
  switch (g.cmd) {
    case DEVLINK_CMD.GET: {
      const handle = dump ? undefined : handleOf(g.attrs, true);
      return handle ? { cmd: 'get', hdr, dump, handle } : { cmd: 'get', hdr, dump };
    }
    case DEVLINK_CMD.ESWITCH_GET:
    case DEVLINK_CMD.ESWITCH_SET: {
      if (dump) throw new VpfError(Errno.EOPNOTSUPP, 'eswitch commands cannot be dumped');
      const h = handleOf(g.attrs, true)!;
      const out: DevlinkRequest = { cmd: g.cmd === DEVLINK_CMD.ESWITCH_GET ? 'eswitch-get' : 'eswitch-set', hdr, ...h };
      if (out.cmd === 'eswitch-get') return out;
      return Object.assign(out, eswitchAttrs(g.attrs));
    }
    default:
      throw new VpfError(Errno.EOPNOTSUPP, `devlink command ${g.cmd} is not supported by vpf; only dev show and dev eswitch show/set`);
  }
}

/** The eswitch attributes present in a request or reply (the mode's u16 and the u8 enums, checked). */
function eswitchAttrs(attrs: Attr[]): EswitchAttrs {
  const out: EswitchAttrs = {};
  const mode = enumU8(lastOf(attrs, DEVLINK_ATTR.ESWITCH_MODE), 'DEVLINK_ATTR_ESWITCH_MODE', ESWITCH_MODES, true);
  const inlineMode = enumU8(lastOf(attrs, DEVLINK_ATTR.ESWITCH_INLINE_MODE), 'DEVLINK_ATTR_ESWITCH_INLINE_MODE', INLINE_MODES);
  const encapMode = enumU8(lastOf(attrs, DEVLINK_ATTR.ESWITCH_ENCAP_MODE), 'DEVLINK_ATTR_ESWITCH_ENCAP_MODE', ENCAP_MODES);
  if (mode !== undefined) out.mode = mode;
  if (inlineMode !== undefined) out.inlineMode = inlineMode;
  if (encapMode !== undefined) out.encapMode = encapMode;
  return out;
}

/**
 * A generic netlink message from the guest: nlctrl (GENL_ID_CTRL) or devlink
 * (`familyId`, DEVLINK_GENL_ID unless the caller announced another). Never throws.
 */
export function decodeDevlinkRequest(msg: NlMessage, familyId: number = DEVLINK_GENL_ID): Result<DevlinkRequest> {
  return attempt(() => {
    const hdr: NlHeader = { type: msg.type, flags: msg.flags, seq: msg.seq, pid: msg.pid };
    if (msg.type === GENL_ID_CTRL) return decodeCtrl(msg, hdr);
    if (msg.type === familyId) return decodeDevlink(msg, hdr);
    throw new VpfError(Errno.EOPNOTSUPP, `message type ${msg.type} is not nlctrl or devlink`);
  });
}

// --- encoders ---

function genl(type: number, cmd: number, version: number, hdr: { seq: number; pid?: number; flags?: number }, attrs: AttrWriter, defaultFlags: number): Buffer {
  const g = Buffer.alloc(GENLMSG_LEN);
  g.writeUInt8(cmd, 0);
  g.writeUInt8(version, 1);
  return buildMessage({ type, flags: hdr.flags ?? defaultFlags, seq: hdr.seq, pid: hdr.pid ?? 0 }, Buffer.concat([g, attrs.toBuffer()]));
}

/** CTRL_CMD_GETFAMILY as lib/mnl_utils.c family_get sends it (REQUEST|ACK, version 1, NUL-terminated name). */
export function encodeFamilyRequest(hdr: { seq: number; pid?: number; flags?: number }, name: string = DEVLINK_GENL_NAME): Buffer {
  return genl(GENL_ID_CTRL, CTRL_CMD.GETFAMILY, 1, hdr, new AttrWriter().string(CTRL_ATTR.FAMILY_NAME, name), NlmF.REQUEST | NlmF.ACK);
}

/**
 * devlink's genl ops as a 6.1 kernel lists them in CTRL_ATTR_OPS: [cmd, GENL_* flags]
 * (ADMIN_PERM 1, CMD_CAP_DO 2, CMD_CAP_DUMP 4, CMD_CAP_HASPOL 8), in the
 * kernel's order, read from Debian's 6.1.0-57 (6.1.192) CTRL_CMD_GETFAMILY reply.
 * The list says what the kernel family offers; commands vpf does not model
 * still get EOPNOTSUPP with an extack.
 */
export const DEVLINK_OPS: readonly (readonly [number, number])[] = [
  [1, 14], [5, 14], [6, 11], [74, 14], [75, 11], [76, 11], [77, 11], [9, 11], [10, 11], [7, 11], [8, 11], [78, 14], [79, 11],
  [11, 14], [15, 14], [16, 11], [19, 14], [20, 11], [23, 14], [24, 11], [27, 11], [28, 11], [29, 11], [30, 11], [31, 10],
  [32, 10], [33, 10], [34, 11], [35, 11], [36, 10], [37, 11], [38, 14], [39, 11], [47, 14], [48, 11], [42, 15], [44, 11],
  [45, 11], [46, 13], [51, 14], [52, 14], [53, 11], [54, 11], [55, 11], [56, 13], [57, 11], [73, 11], [58, 11], [61, 14],
  [62, 11], [65, 14], [66, 11], [69, 14], [70, 11], [82, 14], [83, 11],
];
/** devlink's one multicast group (DEVLINK_GENL_MCGRP_CONFIG_NAME); the id is what that kernel assigned. vpf sends no notifications on it. */
export const DEVLINK_MCGRP = { name: 'config', id: 5 } as const;
const CTRL_ATTR_OP = { ID: 1, FLAGS: 2 } as const;
const CTRL_ATTR_MCAST_GRP = { NAME: 1, ID: 2 } as const;

/**
 * CTRL_CMD_NEWFAMILY for devlink, byte for byte as genetlink.c ctrl_fill_info fills
 * it: name, id, version, hdrsize, maxattr, then CTRL_ATTR_OPS (one nest per op,
 * numbered from 1: id, flags) and CTRL_ATTR_MCAST_GROUPS (id before name), all
 * nests without NLA_F_NESTED (nla_nest_start_noflag).
 */
export function encodeFamilyReply(hdr: { seq: number; pid?: number; flags?: number }, familyId: number = DEVLINK_GENL_ID): Buffer {
  const w = new AttrWriter()
    .string(CTRL_ATTR.FAMILY_NAME, DEVLINK_GENL_NAME)
    .u16(CTRL_ATTR.FAMILY_ID, familyId)
    .u32(CTRL_ATTR.VERSION, DEVLINK_GENL_VERSION)
    .u32(CTRL_ATTR.HDRSIZE, 0)
    .u32(CTRL_ATTR.MAXATTR, DEVLINK_ATTR_MAX)
    .nest(CTRL_ATTR.OPS, (ops) => DEVLINK_OPS.forEach(([id, flags], i) => ops.nest(i + 1, (o) => o.u32(CTRL_ATTR_OP.ID, id).u32(CTRL_ATTR_OP.FLAGS, flags))))
    .nest(CTRL_ATTR.MCAST_GROUPS, (g) => g.nest(1, (m) => m.u32(CTRL_ATTR_MCAST_GRP.ID, DEVLINK_MCGRP.id).string(CTRL_ATTR_MCAST_GRP.NAME, DEVLINK_MCGRP.name)));
  return genl(GENL_ID_CTRL, CTRL_CMD.NEWFAMILY, CTRL_VERSION, hdr, w, 0);
}

function putHandle(w: AttrWriter, h: DevlinkHandle): AttrWriter {
  return w.string(DEVLINK_ATTR.BUS_NAME, h.bus).string(DEVLINK_ATTR.DEV_NAME, h.dev);
}

function putEswitch(w: AttrWriter, e: EswitchAttrs): void {
  // devlink/devlink.c dl_opts_put order: mode, inline-mode, encap-mode (kernel fill order too).
  if (e.mode !== undefined) w.u16(DEVLINK_ATTR.ESWITCH_MODE, ESWITCH_MODES.indexOf(e.mode));
  if (e.inlineMode !== undefined) w.u8(DEVLINK_ATTR.ESWITCH_INLINE_MODE, INLINE_MODES.indexOf(e.inlineMode));
  if (e.encapMode !== undefined) w.u8(DEVLINK_ATTR.ESWITCH_ENCAP_MODE, ENCAP_MODES.indexOf(e.encapMode));
}

/** `devlink dev eswitch show|set HANDLE ...` as the devlink tool sends it (REQUEST|ACK). */
export function encodeEswitchRequest(
  hdr: { seq: number; pid?: number; flags?: number },
  req: { cmd: 'eswitch-get' | 'eswitch-set' } & DevlinkHandle & EswitchAttrs,
  familyId: number = DEVLINK_GENL_ID,
): Buffer {
  const w = putHandle(new AttrWriter(), req);
  if (req.cmd === 'eswitch-set') putEswitch(w, req);
  const cmd = req.cmd === 'eswitch-get' ? DEVLINK_CMD.ESWITCH_GET : DEVLINK_CMD.ESWITCH_SET;
  return genl(familyId, cmd, DEVLINK_GENL_VERSION, hdr, w, NlmF.REQUEST | NlmF.ACK);
}

/** The ESWITCH_GET reply: DEVLINK_CMD_ESWITCH_GET with handle, mode, inline mode, encap mode (devlink_nl_eswitch_fill). */
export function encodeEswitchReply(hdr: { seq: number; pid?: number; flags?: number }, h: DevlinkHandle, e: EswitchAttrs, familyId: number = DEVLINK_GENL_ID): Buffer {
  const w = putHandle(new AttrWriter(), h);
  putEswitch(w, e);
  return genl(familyId, DEVLINK_CMD.ESWITCH_GET, DEVLINK_GENL_VERSION, hdr, w, 0);
}

/** `devlink dev show`: DEVLINK_CMD_GET (dump unless a handle is given). */
export function encodeDevGetRequest(hdr: { seq: number; pid?: number; flags?: number }, handle?: DevlinkHandle, familyId: number = DEVLINK_GENL_ID): Buffer {
  const w = new AttrWriter();
  if (handle) putHandle(w, handle);
  return genl(familyId, DEVLINK_CMD.GET, DEVLINK_GENL_VERSION, hdr, w, handle ? NlmF.REQUEST | NlmF.ACK : NlmF.REQUEST | NlmF.ACK | NlmF.DUMP);
}

/** include/uapi/linux/devlink.h: the attributes of devlink_nl_fill's device statistics. */
const DEV_STATS_ATTR = { RELOAD_FAILED: 136, RELOAD_ACTION: 153, DEV_STATS: 156, RELOAD_STATS: 157, RELOAD_STATS_ENTRY: 158, RELOAD_STATS_LIMIT: 159, RELOAD_STATS_VALUE: 160, REMOTE_RELOAD_STATS: 161, RELOAD_ACTION_INFO: 162, RELOAD_ACTION_STATS: 163 } as const;
/** DEVLINK_RELOAD_ACTION_{DRIVER_REINIT,FW_ACTIVATE} x DEVLINK_RELOAD_LIMIT_{UNSPEC,NO_RESET}, minus the invalid driver_reinit/no_reset. */
const REMOTE_RELOAD: readonly (readonly [number, readonly number[]])[] = [
  [1, [0]],
  [2, [0, 1]],
];

/**
 * One device of a DEVLINK_CMD_GET answer, as devlink_nl_fill fills it in 6.1:
 * DEVLINK_CMD_NEW with the handle, RELOAD_FAILED 0 and DEV_STATS { RELOAD_STATS
 * (empty: the virtual PF supports no reload action), REMOTE_RELOAD_STATS (every
 * action x limit, all 0) }; nests flagged NLA_F_NESTED (nla_nest_start).
 * NLM_F_MULTI in hdr.flags when dumping.
 */
export function encodeDevReply(hdr: { seq: number; pid?: number; flags?: number }, h: DevlinkHandle, familyId: number = DEVLINK_GENL_ID): Buffer {
  const A = DEV_STATS_ATTR;
  const w = putHandle(new AttrWriter(), h)
    .u8(A.RELOAD_FAILED, 0)
    .nest(A.DEV_STATS, (st) => {
      st.nest(A.RELOAD_STATS, () => {}, true);
      st.nest(A.REMOTE_RELOAD_STATS, (r) => {
        for (const [action, limits] of REMOTE_RELOAD) {
          r.nest(A.RELOAD_ACTION_INFO, (info) => {
            info.u8(A.RELOAD_ACTION, action);
            info.nest(A.RELOAD_ACTION_STATS, (as) => limits.forEach((limit) => as.nest(A.RELOAD_STATS_ENTRY, (e) => e.u8(A.RELOAD_STATS_LIMIT, limit).u32(A.RELOAD_STATS_VALUE, 0), true)), true);
          }, true);
        }
      }, true);
    }, true);
  return genl(familyId, DEVLINK_CMD.NEW, DEVLINK_GENL_VERSION, hdr, w, 0);
}

export type DevlinkReply =
  | { cmd: 'family'; id: number; name: string; maxattr?: number }
  | ({ cmd: 'eswitch' } & DevlinkHandle & EswitchAttrs)
  | ({ cmd: 'dev' } & DevlinkHandle);

/** Reads our replies back (vpfctl eswitch show, tests). */
export function decodeDevlinkReply(msg: NlMessage, familyId: number = DEVLINK_GENL_ID): Result<DevlinkReply> {
  return attempt((): DevlinkReply => {
    const g = readGenl(msg);
    if (msg.type === GENL_ID_CTRL && g.cmd === CTRL_CMD.NEWFAMILY) {
      const id = lastOf(g.attrs, CTRL_ATTR.FAMILY_ID);
      const name = lastOf(g.attrs, CTRL_ATTR.FAMILY_NAME);
      const max = lastOf(g.attrs, CTRL_ATTR.MAXATTR);
      if (!id || !name) throw new VpfError(Errno.EINVAL, 'CTRL_CMD_NEWFAMILY without id or name');
      const out: DevlinkReply = { cmd: 'family', id: read.u16(id, 'CTRL_ATTR_FAMILY_ID'), name: read.string(name, 'CTRL_ATTR_FAMILY_NAME', 15) };
      if (max) out.maxattr = read.u32(max, 'CTRL_ATTR_MAXATTR');
      return out;
    }
    if (msg.type !== familyId) throw new VpfError(Errno.EINVAL, `message type ${msg.type} is not devlink`);
    const h = handleOf(g.attrs, true)!;
    if (g.cmd === DEVLINK_CMD.NEW) return { cmd: 'dev', ...h };
    if (g.cmd !== DEVLINK_CMD.ESWITCH_GET) throw new VpfError(Errno.EINVAL, `devlink reply command ${g.cmd} is not read here`);
    const out: DevlinkReply = { cmd: 'eswitch', ...h };
    return Object.assign(out, eswitchAttrs(g.attrs));
  });
}
