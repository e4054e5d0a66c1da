// TCP connection tracking as Linux 6.1 does it (nf_conntrack_proto_tcp.c),
// for the segments the offload tier sends: the handshake and data after it,
// without TCP options (no SACK, no window scaling) and with the default
// sysctls (nf_conntrack_tcp_loose=1, nf_conntrack_tcp_be_liberal=0). What
// the model does not follow (FIN, RST, simultaneous open, a SYN/ACK answering
// a SYN the table ignored, an assured connection's segments on which act_ct's
// flow table and OVS's datapath disagree) it refuses with an error rather
// than guess.
import type { Packet, TcpSegment } from '../packet.js';

/** tcp_conntrack states the model follows (TCP_CONNTRACK_NONE .. ESTABLISHED). */
export const enum TcpState {
  None = 0,
  SynSent = 1,
  SynRecv = 2,
  Established = 3,
}

/** ip_ct_tcp_state: what one direction has sent and may send. */
interface Seen {
  end: number;
  maxend: number;
  maxwin: number;
}

/** ip_ct_tcp, the model's part of it. */
export interface TcpConn {
  state: TcpState;
  /** By direction: 0 original, 1 reply. */
  seen: [Seen, Seen];
  /** IP_CT_TCP_FLAG_BE_LIBERAL: a connection picked up mid-stream (tcp_new) skips the window checks. */
  liberal: boolean;
  /** IPS_ASSURED: from here act_ct's flow table answers for the connection without tcp_in_window. */
  assured: boolean;
  /** ip_ct_tcp last_index, last_dir, last_end: the last segment taken or ignored, which an ignored SYN/ACK is checked against. */
  last: { index: Index; dir: 0 | 1; end: number };
}

/** What tcp_packet decides: accept (counted against the state), or invalid (-NF_ACCEPT: no connection on the packet). */
export type TcpVerdict = 'accept' | 'invalid';

const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20, ECE = 0x40, CWR = 0x80;
export const enum Index { Syn, SynAck, Fin, Ack, Rst, None }

/** get_conntrack_index */
function indexOf(flags: number): Index {
  if (flags & RST) return Index.Rst;
  if (flags & SYN) return flags & ACK ? Index.SynAck : Index.Syn;
  if (flags & FIN) return Index.Fin;
  return flags & ACK ? Index.Ack : Index.None;
}

// tcp_conntracks[dir][index][old state] for sNO, sSS, sSR, sES and the SYN, SYN/ACK, ACK and no-flag rows (FIN and
// RST rows: invalid from sNO, otherwise refused). 'IV': invalid (TCP_CONNTRACK_MAX), 'IG': ignored
// (TCP_CONNTRACK_IGNORE), 'S2': simultaneous open (TCP_CONNTRACK_SYN_SENT2).
type Next = TcpState | 'IV' | 'IG' | 'S2';
const SS = TcpState.SynSent, SR = TcpState.SynRecv, ES = TcpState.Established;
const IV4: Next[] = ['IV', 'IV', 'IV', 'IV'];
const TABLE: Record<0 | 1, Partial<Record<Index, Next[]>>> = {
  0: { [Index.Syn]: [SS, SS, 'IG', 'IG'], [Index.SynAck]: ['IV', 'IV', SR, 'IV'], [Index.Ack]: [ES, 'IV', ES, ES], [Index.None]: IV4 },
  1: { [Index.Syn]: ['IV', 'S2', 'IV', 'IV'], [Index.SynAck]: ['IV', SR, 'IG', 'IG'], [Index.Ack]: ['IV', 'IG', SR, ES], [Index.None]: IV4 },
};

/** tcp_error's tcp_valid_flags (ECE, CWR and PSH ignored): other combinations are invalid before any state. */
const VALID_FLAGS = new Set([SYN, SYN | URG, SYN | ACK, RST, RST | ACK, FIN | ACK, FIN | ACK | URG, ACK, ACK | URG]);
export const tcpValidFlags = (flags: number) => VALID_FLAGS.has(flags & ~(ECE | CWR | PSH) & 0xff);

/**
 * tcp_new: what may open a connection, tcp_conntracks[0][index][sNO] not
 * invalid: a SYN (sSS) or, with nf_conntrack_tcp_loose=1 (the default), a
 * bare ACK picking one up (sES). SYN+ACK, FIN and RST do not.
 */
export function tcpOpens(flags: number): boolean {
  if (!tcpValidFlags(flags)) return false;
  const first = TABLE[0][indexOf(flags)]?.[TcpState.None];
  return first === SS || first === ES;
}

// Sequence arithmetic modulo 2^32 (include/net/tcp.h before/after).
const u32 = (n: number) => n >>> 0;
const before = (a: number, b: number) => ((a - b) | 0) < 0;
const after = (a: number, b: number) => before(b, a);
/** MAXACKWINDOW: how far below the receiver's end an ack may be. */
const maxAckWindow = (s: Seen) => (s.maxwin > 66000 ? s.maxwin : 66000);

/** segment_seq_plus_len: SYN and FIN take one sequence number each. */
const endOf = (seg: TcpSegment, flags: number) => u32(seg.seq + seg.dataLen + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0));

function refuse(why: string): never {
  throw new Error(`conntrack model: ${why} is not modelled (rules/classify/tcptrack.ts)`);
}

/**
 * tcp_new then tcp_packet for a connection's first segment: a SYN opens it
 * (SYN_SENT); with nf_conntrack_tcp_loose a bare ACK picks one up mid-stream
 * (ESTABLISHED, window checks off). Undefined: tcp_new refuses (invalid).
 */
export function tcpFirst(p: Packet): TcpConn | undefined {
  const seg = p.tcpSeg!, flags = p.tcpFlags ?? 0;
  if (!tcpOpens(flags)) return undefined;
  const first = TABLE[0][indexOf(flags)]![TcpState.None];
  const end = endOf(seg, flags), maxwin = seg.window || 1;
  const conn: TcpConn = {
    state: TcpState.None,
    seen: [{ end, maxwin, maxend: first === SS ? end : u32(end + maxwin) }, { end: 0, maxend: 0, maxwin: 0 }],
    liberal: first === ES,
    assured: false,
    last: { index: Index.None, dir: 0, end: 0 },
  };
  if (tcpSegment(conn, p, 0, false) !== 'accept') refuse('a first segment tcp_in_window rejects');
  return conn;
}

/**
 * nf_conntrack_tcp_packet for a segment of a connection conntrack holds, in
 * direction `dir` (1: reply); `seenReply` is IPS_SEEN_REPLY before it. Moves
 * the connection's state on an accepted segment.
 */
export function tcpSegment(conn: TcpConn, p: Packet, dir: 0 | 1, seenReply: boolean): TcpVerdict {
  const seg = p.tcpSeg!, flags = p.tcpFlags ?? 0;
  if (!tcpValidFlags(flags)) return 'invalid';
  const index = indexOf(flags);
  if (index === Index.Fin || index === Index.Rst) refuse('a FIN or RST');
  const next = TABLE[dir][index]![conn.state]!;
  if (conn.assured) {
    // act_ct's flow table takes an assured, established connection's packets without the state table or
    // tcp_in_window; OVS's datapath does not. The model requires segments on which the two agree.
    const probe = structuredClone(conn);
    if (typeof next !== 'number' || inWindow(probe, seg, flags, dir, index) !== 'accept') refuse('a segment the state table or the window would not take, on an assured connection');
  }
  if (next === 'IV') return 'invalid';
  if (next === 'S2') refuse('a simultaneous open');
  if (next === 'IG') {
    // TCP_CONNTRACK_IGNORE: NF_ACCEPT, the state left as it was, the segment noted. A SYN/ACK answering a SYN
    // noted so would resynchronise the connection instead, which the model does not follow.
    if (index === Index.SynAck && conn.last.index === Index.Syn && conn.last.dir !== dir && u32(seg.ack) === conn.last.end) refuse('a SYN/ACK answering an ignored SYN');
    conn.last = { index, dir, end: endOf(seg, flags) };
    return 'accept';
  }
  const w = inWindow(conn, seg, flags, dir, index);
  if (w === 'invalid') return 'invalid';
  if (w === 'ignore') return 'accept'; // NFCT_TCP_IGNORE: NF_ACCEPT, the state left as it was
  const old = conn.state;
  conn.state = next;
  conn.last.index = index;
  conn.last.dir = dir;
  // IPS_ASSURED: a valid ACK into ESTABLISHED after SYN_RECV, or an answer on a picked-up connection.
  if (seenReply && (old === TcpState.SynRecv || old === TcpState.Established) && conn.state === TcpState.Established) conn.assured = true;
  return 'accept';
}

/** tcp_in_window without options (no SACK blocks, td_scale 0) and without NAT sequence offsets. */
function inWindow(conn: TcpConn, seg: TcpSegment, flags: number, dir: 0 | 1, index: Index): 'accept' | 'ignore' | 'invalid' {
  const sender = conn.seen[dir], receiver = conn.seen[dir === 0 ? 1 : 0];
  const seq = u32(seg.seq), win = seg.window, end = endOf(seg, flags);
  let ack = u32(seg.ack);
  // nf_tcp_store_invalid: a liberal connection accepts what fails a check, without the updates below.
  const fail = (r: 'ignore' | 'invalid') => (conn.liberal ? 'accept' : r);
  const initSender = () => {
    sender.end = sender.maxend = end;
    sender.maxwin = win === 0 ? 1 : win;
  };
  if (sender.maxwin === 0) {
    if (flags & SYN) {
      initSender();
      if (!(flags & ACK)) return 'accept';
    } else {
      sender.end = end;
      sender.maxwin = win === 0 ? 1 : win;
      sender.maxend = u32(end + sender.maxwin);
      if (receiver.maxwin === 0) receiver.end = receiver.maxend = ack;
      else if (ack === u32(receiver.end + 1)) receiver.end = u32(receiver.end + 1);
    }
  } else if (flags & SYN && after(end, sender.end) && (conn.state === TcpState.SynSent || conn.state === TcpState.SynRecv)) {
    initSender();
    if (dir === 1 && !(flags & ACK)) return 'accept';
  }
  if (!(flags & ACK)) ack = receiver.end;
  const sack = ack;
  if (!before(seq, u32(sender.maxend + 1))) {
    const overshot = u32(end - sender.maxend + 1);
    const ackOk = after(sack, u32(receiver.end - maxAckWindow(sender) - 1));
    const inRecvWin = receiver.maxwin !== 0 && after(end, u32(sender.end - receiver.maxwin - 1));
    if (inRecvWin && ackOk && overshot <= receiver.maxwin && before(sack, u32(receiver.end + 1))) {
      sender.end = end;
      return fail('ignore');
    }
    return fail('invalid');
  }
  if (!before(sack, u32(receiver.end + 1))) return fail('invalid');
  if (receiver.maxwin !== 0 && !after(end, u32(sender.end - receiver.maxwin - 1))) return fail('ignore');
  if (!after(sack, u32(receiver.end - maxAckWindow(sender) - 1))) return fail('ignore');
  // Update the sender's and the receiver's data.
  if (sender.maxwin < win) sender.maxwin = win;
  if (after(end, sender.end)) sender.end = end;
  if (receiver.maxwin !== 0 && after(end, sender.maxend)) receiver.maxwin += u32(end - sender.maxend);
  if (after(u32(sack + win), u32(receiver.maxend - 1))) receiver.maxend = u32(sack + win + (win === 0 ? 1 : 0));
  // Retransmission bookkeeping: an ACK segment becomes the last one seen.
  if (index === Index.Ack) conn.last = { ...conn.last, dir, end };
  return 'accept';
}
