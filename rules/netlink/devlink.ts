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
 * CTRL_CMD_NEWFAMILY for devlink, in ctrl_fill_info's order: name, id, version,
 * hdrsize, maxattr. iproute2's mnlu_gen_socket_open needs FAMILY_ID and MAXATTR;
 * OPS and MCAST_GROUPS are left out (the channel has no multicast for `devlink monitor`).
 */
export function encodeFamilyReply(hdr: { seq: number; pid?: number; flags?: number }, familyId: number = DEVLINK_GENL_ID): Buffer {
  const w = new AttrWriter()
    .string(CTRL_ATTR.FAMILY_NAME, DEVLINK_GENL_NAME)
    .u16(CTRL_ATTR.FAMILY_ID, familyId)
    .u32(CTRL_ATTR.VERSION, DEVLINK_GENL_VERSION)
    .u32(CTRL_ATTR.HDRSIZE, 0)
    .u32(CTRL_ATTR.MAXATTR, DEVLINK_ATTR_MAX);
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

/** One device of a DEVLINK_CMD_GET answer (DEVLINK_CMD_NEW with the handle; NLM_F_MULTI in hdr.flags when dumping). */
export function encodeDevReply(hdr: { seq: number; pid?: number; flags?: number }, h: DevlinkHandle, familyId: number = DEVLINK_GENL_ID): Buffer {
  return genl(familyId, DEVLINK_CMD.NEW, DEVLINK_GENL_VERSION, hdr, putHandle(new AttrWriter(), h), 0);
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
