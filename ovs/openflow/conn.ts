// A persistent OpenFlow 1.5 connection to a bridge's management socket
// (`<rundir>/<br>.mgmt`): hello with a version bitmap, echo answered, replies
// matched to requests by xid, OFPT_ERROR as a typed OpenFlowError, and
// atomic+ordered bundles done the way lib/vconn.c vconn_bundle_transact does
// them (open, adds, barrier, then commit only if no add failed, else discard):
// OVS drops a failing add from the bundle instead of failing the bundle.
import { connect, type Socket } from 'node:net';
import {
  BUNDLE_ATOMIC_ORDERED,
  BundleCtrl,
  encodeBarrier,
  encodeBundleAdd,
  encodeBundleControl,
  encodeHello,
  OFP15_VERSION,
  OFP_HEADER_LEN,
  OfpType,
  parseHeader,
  setXid,
} from './encode.js';

const ERROR_TYPES: Record<number, [string, string[]]> = {
  0: ['OFPET_HELLO_FAILED', ['INCOMPATIBLE', 'EPERM']],
  1: ['OFPET_BAD_REQUEST', ['BAD_VERSION', 'BAD_TYPE', 'BAD_MULTIPART', 'BAD_EXPERIMENTER', 'BAD_EXP_TYPE', 'EPERM', 'BAD_LEN', 'BUFFER_EMPTY', 'BUFFER_UNKNOWN', 'BAD_TABLE_ID', 'IS_SLAVE', 'BAD_PORT', 'BAD_PACKET', 'MULTIPART_BUFFER_OVERFLOW']],
  2: ['OFPET_BAD_ACTION', ['BAD_TYPE', 'BAD_LEN', 'BAD_EXPERIMENTER', 'BAD_EXP_TYPE', 'BAD_OUT_PORT', 'BAD_ARGUMENT', 'EPERM', 'TOO_MANY', 'BAD_QUEUE', 'BAD_OUT_GROUP', 'MATCH_INCONSISTENT', 'UNSUPPORTED_ORDER', 'BAD_TAG', 'BAD_SET_TYPE', 'BAD_SET_LEN', 'BAD_SET_ARGUMENT']],
  3: ['OFPET_BAD_INSTRUCTION', ['UNKNOWN_INST', 'UNSUP_INST', 'BAD_TABLE_ID', 'UNSUP_METADATA', 'UNSUP_METADATA_MASK', 'BAD_EXPERIMENTER', 'BAD_EXP_TYPE', 'BAD_LEN', 'EPERM']],
  4: ['OFPET_BAD_MATCH', ['BAD_TYPE', 'BAD_LEN', 'BAD_TAG', 'BAD_DL_ADDR_MASK', 'BAD_NW_ADDR_MASK', 'BAD_WILDCARDS', 'BAD_FIELD', 'BAD_VALUE', 'BAD_MASK', 'BAD_PREREQ', 'DUP_FIELD', 'EPERM']],
  5: ['OFPET_FLOW_MOD_FAILED', ['UNKNOWN', 'TABLE_FULL', 'BAD_TABLE_ID', 'OVERLAP', 'EPERM', 'BAD_TIMEOUT', 'BAD_COMMAND', 'BAD_FLAGS', 'CANT_SYNC', 'BAD_PRIORITY', 'IS_SYNC']],
  12: ['OFPET_METER_MOD_FAILED', ['UNKNOWN', 'METER_EXISTS', 'INVALID_METER', 'UNKNOWN_METER', 'BAD_COMMAND', 'BAD_FLAGS', 'BAD_RATE', 'BAD_BURST', 'BAD_BAND', 'BAD_BAND_VALUE', 'OUT_OF_METERS', 'OUT_OF_BANDS']],
  17: ['OFPET_BUNDLE_FAILED', ['UNKNOWN', 'EPERM', 'BAD_ID', 'BUNDLE_EXIST', 'BUNDLE_CLOSED', 'OUT_OF_BUNDLES', 'BAD_TYPE', 'BAD_FLAGS', 'MSG_BAD_LEN', 'MSG_BAD_XID', 'MSG_UNSUP', 'MSG_CONFLICT', 'MSG_TOO_MANY', 'MSG_FAILED', 'TIMEOUT', 'BUNDLE_IN_PROGRESS']],
};
// The short code prefixes of openflow-1.x names (OFPBAC_BAD_OUT_PORT etc.).
const CODE_PREFIX: Record<number, string> = { 0: 'OFPHFC', 1: 'OFPBRC', 2: 'OFPBAC', 3: 'OFPBIC', 4: 'OFPBMC', 5: 'OFPFMFC', 12: 'OFPMMFC', 17: 'OFPBFC' };

/** An OFPT_ERROR from the switch. `data` holds the first bytes of the offending message (OVS sends up to 64). */
export class OpenFlowError extends Error {
  readonly typeName: string;
  readonly codeName: string;
  /** Which of bundle()'s messages OVS refused (its error carries that message's xid). */
  bundleIndex?: number;
  constructor(
    readonly type: number,
    readonly code: number,
    readonly data: Buffer,
    readonly xid: number,
  ) {
    const [typeName, codes] = ERROR_TYPES[type] ?? [type === 0xffff ? 'OFPET_EXPERIMENTER' : `OFPET_${type}`, []];
    const codeName = codes[code] ? `${CODE_PREFIX[type]}_${codes[code]}` : `code ${code}`;
    super(`${typeName}/${codeName} for message ${data.subarray(0, 16).toString('hex') || '(none)'}`);
    this.name = 'OpenFlowError';
    this.typeName = typeName;
    this.codeName = codeName;
  }
}

/** The connection is gone (closed, reset, timed out): whatever was in flight has an unknown outcome. */
export class ConnectionLost extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionLost';
  }
}

interface Pending {
  resolve(reply: Buffer): void;
  reject(e: Error): void;
}

export interface ConnectionOptions {
  /** How long a request may wait for its reply before the connection is declared lost. */
  timeoutMs?: number;
}

export class OpenFlowConnection {
  private sock: Socket | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private pending = new Map<number, Pending>();
  /** Errors for messages sent without a reply expected (bundle adds), by xid. */
  private watched = new Map<number, OpenFlowError[]>();
  private xid = 1;
  private bundleId = 1;
  private connecting: Promise<void> | undefined;
  private helloWaiter: Pending | undefined;
  private readonly path: string;
  private readonly timeoutMs: number;

  constructor(target: string, opts: ConnectionOptions = {}) {
    this.path = target.startsWith('unix:') ? target.slice('unix:'.length) : target;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
  }

  get connected(): boolean {
    return this.sock !== undefined && this.connecting === undefined;
  }

  nextXid(): number {
    const x = this.xid;
    this.xid = this.xid >= 0xffffffff ? 1 : this.xid + 1;
    return x;
  }

  /** Connects and negotiates OpenFlow 1.5; a no-op when connected. Rejects if the bridge does not speak 1.5. */
  connect(): Promise<void> {
    if (this.sock && !this.connecting) return Promise.resolve();
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const sock = connect(this.path);
      this.sock = sock;
      this.buf = Buffer.alloc(0);
      const timer = setTimeout(() => this.fail(new ConnectionLost(`OpenFlow hello from ${this.path} timed out`)), this.timeoutMs);
      this.helloWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      sock.on('connect', () => sock.write(encodeHello(this.nextXid())));
      sock.on('data', (chunk: Buffer) => this.onData(chunk));
      sock.on('error', (e) => this.fail(new ConnectionLost(`OpenFlow connection to ${this.path}: ${e.message}`)));
      sock.on('close', () => this.fail(new ConnectionLost(`OpenFlow connection to ${this.path} closed`)));
    });
  }

  /** Tears the connection down; everything in flight rejects with `why`. */
  private fail(why: Error): void {
    const sock = this.sock;
    if (!sock) return;
    this.sock = undefined;
    sock.destroy();
    const hello = this.helloWaiter;
    this.helloWaiter = undefined;
    hello?.reject(why);
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.watched.clear();
    for (const p of pending) p.reject(why);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= OFP_HEADER_LEN) {
      const len = this.buf.readUInt16BE(2);
      if (len < OFP_HEADER_LEN) return this.fail(new ConnectionLost(`OpenFlow message with length ${len} from ${this.path}`));
      if (this.buf.length < len) break;
      const msg = this.buf.subarray(0, len);
      this.buf = this.buf.subarray(len);
      this.onMessage(msg);
      if (!this.sock) return;
    }
  }

  private onMessage(msg: Buffer): void {
    const h = parseHeader(msg);
    if (this.helloWaiter) {
      if (h.type === OfpType.HELLO && helloAccepts15(msg)) {
        const w = this.helloWaiter;
        this.helloWaiter = undefined;
        return w.resolve(msg);
      }
      const why = h.type === OfpType.ERROR ? errorOf(msg) : new ConnectionLost(`${this.path} does not speak OpenFlow 1.5 (hello version ${h.version})`);
      return this.fail(why);
    }
    if (h.type === OfpType.ECHO_REQUEST) {
      const reply = Buffer.from(msg);
      reply[1] = OfpType.ECHO_REPLY;
      this.sock?.write(reply);
      return;
    }
    if (h.type === OfpType.ERROR) {
      const err = errorOf(msg);
      const w = this.watched.get(h.xid);
      if (w) w.push(err);
      const p = this.pending.get(h.xid);
      if (p) {
        this.pending.delete(h.xid);
        p.reject(err);
      }
      return;
    }
    const p = this.pending.get(h.xid);
    if (p) {
      this.pending.delete(h.xid);
      p.resolve(msg);
    }
    // Anything else (async messages, late replies) is not ours to handle.
  }

  private requireSocket(): Socket {
    if (!this.sock || this.connecting) throw new ConnectionLost(`not connected to ${this.path}`);
    return this.sock;
  }

  /** Sends `msg` with a fresh xid and resolves with the reply carrying that xid; an OFPT_ERROR rejects with OpenFlowError. */
  request(msg: Buffer): Promise<Buffer> {
    const sock = this.requireSocket();
    const xid = this.nextXid();
    setXid(msg, xid);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new ConnectionLost(`no reply from ${this.path} within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.pending.set(xid, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      sock.write(msg);
    });
  }

  /** OFPT_BARRIER_REQUEST: resolves once the switch has processed everything sent before it. */
  async barrier(): Promise<void> {
    await this.request(encodeBarrier());
  }

  /**
   * Applies `messages` (flow mods) as one atomic, ordered bundle: all or none.
   * Resolves when OVS has committed it (the commit reply is the barrier).
   * Rejects with the OpenFlowError of the first refused message (the bundle is
   * then discarded) or ConnectionLost (outcome unknown).
   */
  async bundle(messages: Buffer[]): Promise<void> {
    const sock = this.requireSocket();
    const id = this.bundleId;
    this.bundleId = this.bundleId >= 0xffffffff ? 1 : this.bundleId + 1;
    const flags = BUNDLE_ATOMIC_ORDERED;
    const errors: OpenFlowError[] = [];
    const addXids: number[] = [];
    // Pipelined: OVS handles one connection's messages in order, so an open
    // failure shows up as add errors and the barrier reply follows them all.
    const opened = this.request(encodeBundleControl(id, BundleCtrl.OPEN_REQUEST, flags));
    opened.catch(() => {}); // observed below; a lost connection must not count as unhandled
    // Few large writes instead of one per message: a 100k-flow bundle stays cheap.
    let batch: Buffer[] = [], size = 0;
    for (const inner of messages) {
      const xid = this.nextXid();
      addXids.push(xid);
      this.watched.set(xid, errors);
      const add = encodeBundleAdd(id, flags, inner, xid);
      batch.push(add);
      size += add.length;
      if (size >= 1 << 18) {
        sock.write(Buffer.concat(batch));
        batch = [];
        size = 0;
      }
    }
    if (batch.length) sock.write(Buffer.concat(batch));
    try {
      const [open, barrier] = await Promise.allSettled([opened, this.barrier()]);
      if (barrier.status === 'rejected') throw barrier.reason;
      if (open.status === 'rejected') throw open.reason;
      const culprit = (): OpenFlowError => Object.assign(errors[0]!, { bundleIndex: addXids.indexOf(errors[0]!.xid) });
      if (errors.length) {
        await this.request(encodeBundleControl(id, BundleCtrl.DISCARD_REQUEST, flags)).catch(() => {});
        throw culprit();
      }
      try {
        await this.request(encodeBundleControl(id, BundleCtrl.COMMIT_REQUEST, flags));
      } catch (e) {
        // A failed commit names the culprit in an error for its add (ofproto.c do_bundle_commit), sent first.
        throw errors.length ? culprit() : e;
      }
    } finally {
      for (const x of addXids) this.watched.delete(x);
    }
  }

  /** Closes the socket; pending requests reject. Safe to call twice; connect() works again afterwards. */
  async close(): Promise<void> {
    const sock = this.sock;
    if (!sock) return;
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.end();
    const t = setTimeout(() => sock.destroy(), 1000);
    await closed;
    clearTimeout(t);
    this.fail(new ConnectionLost(`OpenFlow connection to ${this.path} closed`));
  }
}

/** Whether a peer's HELLO lets us talk 1.5: its bitmap has bit 6, or (no bitmap) its version is at least 1.5. */
function helloAccepts15(msg: Buffer): boolean {
  let off = OFP_HEADER_LEN;
  while (off + 4 <= msg.length) {
    const type = msg.readUInt16BE(off), len = msg.readUInt16BE(off + 2);
    if (len < 4) break;
    if (type === 1 && off + 8 <= msg.length) return (msg.readUInt32BE(off + 4) & (1 << OFP15_VERSION)) !== 0;
    off += (len + 7) & ~7;
  }
  return msg[0]! >= OFP15_VERSION;
}

function errorOf(msg: Buffer): OpenFlowError {
  const h = parseHeader(msg);
  const type = msg.length >= 10 ? msg.readUInt16BE(8) : 0xfffe;
  const code = msg.length >= 12 ? msg.readUInt16BE(10) : 0;
  // OFPET_EXPERIMENTER carries exp_code in `code` and then a 4-byte experimenter id before the data.
  const data = msg.subarray(type === 0xffff ? 16 : 12);
  return new OpenFlowError(type, code, Buffer.from(data), h.xid);
}
