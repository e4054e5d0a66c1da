// OpenFlow 1.5 messages vpf sends on its own connection (openflow-1.5 spec;
// OVS include/openflow/openflow-1.{1,4,5}.h, lib/ofp-flow.c, lib/ofp-bundle.c):
// flow mods built from an OfFlow's values, byte for byte what
// `ovs-ofctl -O OpenFlow15` builds from its printed line (flowLine), plus the framing the connection needs (hello,
// echo, barrier, bundle control and add). Every xid here is a placeholder the
// connection overwrites.
import type { OfFlow } from './flow.js';
import { encodeInstructions } from './actions.js';
import { encodeOfpMatch, unsupported, UnsupportedFlow } from './oxm.js';

export { UnsupportedFlow };

export const OFP15_VERSION = 0x06;
export const OFP_HEADER_LEN = 8;
/** The 16-bit length field bounds every message. */
export const OFP_MAX_MSG_LEN = 0xffff;

export const OfpType = {
  HELLO: 0,
  ERROR: 1,
  ECHO_REQUEST: 2,
  ECHO_REPLY: 3,
  FLOW_MOD: 14,
  BARRIER_REQUEST: 20,
  BARRIER_REPLY: 21,
  BUNDLE_CONTROL: 33,
  BUNDLE_ADD_MESSAGE: 34,
} as const;

/** ofp14_bundle_ctrl_msg type (openflow-1.4.h enum ofp14_bundle_ctrl_type). */
export const BundleCtrl = {
  OPEN_REQUEST: 0,
  OPEN_REPLY: 1,
  CLOSE_REQUEST: 2,
  CLOSE_REPLY: 3,
  COMMIT_REQUEST: 4,
  COMMIT_REPLY: 5,
  DISCARD_REQUEST: 6,
  DISCARD_REPLY: 7,
} as const;

/** OFPBF_ATOMIC | OFPBF_ORDERED: all or nothing, in the order sent (what `ovs-ofctl --bundle` asks for). */
export const BUNDLE_ATOMIC_ORDERED = 0x1 | 0x2;

const OFPFC_ADD = 0;
const OFPFC_DELETE = 3;
const OFPTT_ALL = 0xff;
const OFP_NO_BUFFER = 0xffffffff;
const OFPP_ANY = 0xffffffff;
const OFPG_ANY = 0xffffffff;
const OFP_DEFAULT_PRIORITY = 0x8000;
/** Room a flow mod must leave for the bundle-add wrapper around it. */
const BUNDLE_ADD_OVERHEAD = 16;

export function header(type: number, length: number, xid = 0): Buffer {
  const h = Buffer.alloc(OFP_HEADER_LEN);
  h[0] = OFP15_VERSION;
  h[1] = type;
  h.writeUInt16BE(length, 2);
  h.writeUInt32BE(xid >>> 0, 4);
  return h;
}

/** A message of `type` with `body` (length filled in). */
export function message(type: number, body: Buffer, xid = 0): Buffer {
  return Buffer.concat([header(type, OFP_HEADER_LEN + body.length, xid), body]);
}

export const setXid = (msg: Buffer, xid: number): Buffer => {
  msg.writeUInt32BE(xid >>> 0, 4);
  return msg;
};

interface FlowModFields {
  cookie: bigint;
  cookieMask: bigint;
  table: number;
  command: number;
  priority: number;
  match: Buffer;
  instructions: Buffer;
}

/** ofp11_flow_mod as OF1.5 lays it out (importance where OF1.1-1.3 had padding). */
function flowMod(m: FlowModFields): Buffer {
  const fixed = Buffer.alloc(40);
  fixed.writeBigUInt64BE(m.cookie, 0);
  fixed.writeBigUInt64BE(m.cookieMask, 8);
  fixed[16] = m.table;
  fixed[17] = m.command;
  // idle_timeout, hard_timeout stay 0.
  fixed.writeUInt16BE(m.priority, 22);
  fixed.writeUInt32BE(OFP_NO_BUFFER, 24);
  fixed.writeUInt32BE(OFPP_ANY, 28);
  fixed.writeUInt32BE(OFPG_ANY, 32);
  // flags, importance stay 0.
  return message(OfpType.FLOW_MOD, Buffer.concat([fixed, m.match, m.instructions]));
}

const U64 = (1n << 64n) - 1n;

/** OFPFC_ADD of one flow (`add table=..,priority=..,cookie=..,MATCH,actions=ACTIONS`); throws UnsupportedFlow outside our vocabulary. */
export function encodeFlowMod(f: OfFlow, command: 'add'): Buffer {
  if (command !== 'add') return unsupported(`flow mod ${command as string}`, `flow mod command '${command as string}' is not encoded natively`);
  if (!Number.isInteger(f.table) || f.table < 0 || f.table > 254) return unsupported('table out of range', `table ${f.table} cannot take flows`);
  if (!Number.isInteger(f.priority) || f.priority < 0 || f.priority > 0xffff) return unsupported('priority out of range', `priority ${f.priority} out of range`);
  if (f.cookie < 0n || f.cookie > U64) return unsupported('cookie out of range', `cookie ${f.cookie} out of range`);
  const msg = flowMod({ cookie: f.cookie, cookieMask: 0n, table: f.table, command: OFPFC_ADD, priority: f.priority, match: encodeOfpMatch(f.match), instructions: encodeInstructions(f.actions) });
  if (msg.length > OFP_MAX_MSG_LEN - BUNDLE_ADD_OVERHEAD) return unsupported('flow too large for one message', `flow mod of ${msg.length} bytes does not fit a bundle add`);
  return msg;
}

/** OFPFC_DELETE in every table of the flows carrying exactly `cookie`: the `delete cookie=0x../-1` line. */
export function encodeDeleteByCookie(cookie: bigint): Buffer {
  if (cookie < 0n || cookie > U64) throw new RangeError(`cookie ${cookie} out of range`);
  const emptyMatch = Buffer.from([0, 1, 0, 4, 0, 0, 0, 0]); // OFPMT_OXM, length 4, padded
  return flowMod({ cookie, cookieMask: U64, table: OFPTT_ALL, command: OFPFC_DELETE, priority: OFP_DEFAULT_PRIORITY, match: emptyMatch, instructions: Buffer.alloc(0) });
}

/** HELLO offering OpenFlow 1.5 only (OFPHET_VERSIONBITMAP with bit 6). */
export function encodeHello(xid = 0): Buffer {
  const elem = Buffer.alloc(8);
  elem.writeUInt16BE(1, 0); // OFPHET_VERSIONBITMAP
  elem.writeUInt16BE(8, 2);
  elem.writeUInt32BE(1 << OFP15_VERSION, 4);
  return message(OfpType.HELLO, elem, xid);
}

export const encodeBarrier = (xid = 0): Buffer => message(OfpType.BARRIER_REQUEST, Buffer.alloc(0), xid);

/** ofp14_bundle_ctrl_msg without properties. */
export function encodeBundleControl(bundleId: number, type: number, flags: number, xid = 0): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(bundleId >>> 0, 0);
  body.writeUInt16BE(type, 4);
  body.writeUInt16BE(flags, 6);
  return message(OfpType.BUNDLE_CONTROL, body, xid);
}

/** OFPT_BUNDLE_ADD_MESSAGE around `inner`, whose xid must equal the outer one (ofp-bundle.c: OFPBFC_MSG_BAD_XID). */
export function encodeBundleAdd(bundleId: number, flags: number, inner: Buffer, xid = 0): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(bundleId >>> 0, 0);
  body.writeUInt16BE(flags, 6);
  const msg = message(OfpType.BUNDLE_ADD_MESSAGE, Buffer.concat([body, inner]), xid);
  if (msg.length > OFP_MAX_MSG_LEN) throw new RangeError(`bundle add of ${msg.length} bytes exceeds the OpenFlow length field`);
  setXid(msg.subarray(16), xid);
  return msg;
}

/** Decoded ofp_header. */
export interface OfpHeader {
  version: number;
  type: number;
  length: number;
  xid: number;
}

export function parseHeader(b: Buffer): OfpHeader {
  return { version: b[0]!, type: b[1]!, length: b.readUInt16BE(2), xid: b.readUInt32BE(4) };
}
