// TCP connection tracking as Linux 6.1 does it (nf_conntrack_proto_tcp.c as
// in Debian's 6.1.192, the source of both tier kernels), for segments without
// TCP options (no SACK, no window scaling), with the default sysctls
// (nf_conntrack_tcp_loose=1, nf_conntrack_tcp_be_liberal=0,
// nf_conntrack_tcp_ignore_invalid_rst=0) and without timeouts (a connection
// never expires here).
//
// Followed (nf_conntrack_tcp_packet): the whole tcp_conntracks table from NONE
// to CLOSE, open, data, FIN (it takes a sequence number), the ACKs after it
// and RST; tcp_in_window; ASSURED; the RST checks before the window (a
// closing connection's RST taken as it comes, tcp_can_early_drop; an
// established one's checked against the peer's td_maxack: below it invalid,
// at it or at the end of the sender's last ACK it closes, elsewhere in the
// window it leaves the state for a challenge ACK; an RST answering an ignored
// SYN or a half-open ACK by last_end, or a challenge ACK by last_ack, skips
// the window); an RST before any reply kills the connection (nf_ct_kill_acct);
// a SYN in TIME_WAIT or CLOSE after a FIN, or after an RST from its own side,
// kills the connection and is looked up again as a new one (nf_ct_kill,
// -NF_REPEAT), otherwise it is ignored; the RFC 5961 challenge ACK in LAST_ACK.
// nf_tcp_handle_invalid changes nothing here: it acts only when tcp_in_window
// finds an assured connection's FIN or RST invalid (a shorter timeout, last_*),
// which the model refuses below.
//
// act_ct (the skbext tier) and OVS's datapath (the stock tier) run the same
// conntrack, with one difference: act_ct puts an ASSURED, ESTABLISHED
// connection in its flow table (act_ct.c tcf_ct_flow_table_process_conn),
// sets IP_CT_TCP_FLAG_BE_LIBERAL on both sides for good
// (tcf_ct_flow_table_add), and from then on answers a segment without
// conntrack (tcf_ct_flow_table_lookup) until a FIN or RST tears the entry down
// (flow_offload_teardown; flow_offload_fixup_tcp zeroes td_maxwin on both
// sides, the flag stays) and goes to conntrack. The model takes it that act_ct
// sees every FIN and RST (the tier's last send of each frame is on dp:tc).
// Refused, with an error rather than a guess:
// - on an assured connection, a segment tcp_in_window would not take
//   outright (act_ct's liberal connection takes anything);
// - on an assured, ESTABLISHED one, a segment other than FIN or RST that the
//   state table does not move to ESTABLISHED (act_ct's flow table takes it),
//   and an RST whose checks read a td_maxack or last_* that a segment act_ct's
//   flow table may have answered without conntrack changed;
// - simultaneous open (SYN_SENT2), and a SYN/ACK answering a SYN the table
//   ignored (the resync from last_*).
import type { Packet, TcpSegment } from '../packet.js';

/** tcp_conntrack states (TCP_CONNTRACK_NONE .. CLOSE; SYN_SENT2 is refused). */
export const enum TcpState {
  None = 0,
  SynSent = 1,
  SynRecv = 2,
  Established = 3,
  FinWait = 4,
  CloseWait = 5,
  LastAck = 6,
  TimeWait = 7,
  Close = 8,
}

/** ip_ct_tcp_state: what one direction has sent and may send. */
interface Seen {
  end: number;
  maxend: number;
  maxwin: number;
  /** td_maxack, the highest ack this side sent; undefined until IP_CT_TCP_FLAG_MAXACK_SET. */
  maxack?: number;
  /** IP_CT_TCP_FLAG_CLOSE_INIT: this side's FIN moved the connection into FIN_WAIT. */
  closeInit?: boolean;
}

/** ip_ct_tcp, the model's part of it. */
export interface TcpConn {
  state: TcpState;
  /** By direction: 0 original, 1 reply. */
  seen: [Seen, Seen];
  /** IP_CT_TCP_FLAG_BE_LIBERAL: a connection picked up mid-stream (tcp_new) skips the window checks. */
  liberal: boolean;
  /** IPS_ASSURED: from here act_ct may hold the connection in its flow table, liberal. */
  assured: boolean;
  /** ip_ct_tcp last_index, last_dir, last_end, last_ack: the last segment taken or ignored, which the RST checks read. */
  last: { index: Index; dir: 0 | 1; end: number; ack: number };
  /** IP_CT_EXP_CHALLENGE_ACK in last_flags: a SYN was ignored in LAST_ACK, so the next ACK back may be a challenge ACK. */
  challengeAck?: boolean;
  /**
   * What a segment act_ct's flow table may have answered without conntrack changed here: act_ct's td_maxack of
   * that side (by direction) or last_* may be older than these.
   */
  stale?: { maxack: [boolean, boolean]; last: boolean };
}

/**
 * What nf_conntrack_tcp_packet decides: accept (the state moved or kept), invalid (-NF_ACCEPT: no connection on
 * the packet), killed (NF_ACCEPT, then nf_ct_kill_acct: the connection is gone after this packet), repeat
 * (nf_ct_kill and -NF_REPEAT: the connection is gone and nf_conntrack_in looks the packet up again, a first packet).
 */
export type TcpVerdict = 'accept' | 'invalid' | 'killed' | 'repeat';

const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20, ECE = 0x40, CWR = 0x80;
export const enum Index { Syn, SynAck, Fin, Ack, Rst, None }

/** get_conntrack_index */
function indexOf(flags: number): Index {
  if (flags & RST) return Index.Rst;
  if (flags & SYN) return flags & ACK ? Index.SynAck : Index.Syn;
  if (flags & FIN) return Index.Fin;
  return flags & ACK ? Index.Ack : Index.None;
}

// tcp_conntracks[dir][index][old state], columns sNO sSS sSR sES sFW sCW sLA sTW sCL sS2. 'IV': invalid
// (TCP_CONNTRACK_MAX), 'IG': ignored (TCP_CONNTRACK_IGNORE), 'S2': simultaneous open (TCP_CONNTRACK_SYN_SENT2).
type Next = TcpState | 'IV' | 'IG' | 'S2';
const NO = TcpState.None, SS = TcpState.SynSent, SR = TcpState.SynRecv, ES = TcpState.Established;
const FW = TcpState.FinWait, CW = TcpState.CloseWait, LA = TcpState.LastAck, TW = TcpState.TimeWait, CL = TcpState.Close;
const IV = 'IV', IG = 'IG', S2 = 'S2';
const TABLE: Record<0 | 1, Record<Index, Next[]>> = {
  0: {
    [Index.Syn]: /*    */ [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2],
    [Index.SynAck]: /* */ [IV, IV, SR, IV, IV, IV, IV, IV, IV, SR],
    [Index.Fin]: /*    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
    [Index.Ack]: /*    */ [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV],
    [Index.Rst]: /*    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    [Index.None]: /*   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
  },
  1: {
    [Index.Syn]: /*    */ [IV, S2, IV, IV, IV, IV, IV, SS, IV, S2],
    [Index.SynAck]: /* */ [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR],
    [Index.Fin]: /*    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
    [Index.Ack]: /*    */ [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG],
    [Index.Rst]: /*    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    [Index.None]: /*   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
  },
};

/** tcp_can_early_drop: a closing connection, whose RST is taken without the sequence checks. */
const closing = (s: TcpState) => s >= FW && s <= CL;

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
  const first = TABLE[0][indexOf(flags)][NO];
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
  const first = TABLE[0][indexOf(flags)][NO];
  const end = endOf(seg, flags), maxwin = seg.window || 1;
  const conn: TcpConn = {
    state: NO,
    seen: [{ end, maxwin, maxend: first === SS ? end : u32(end + maxwin) }, { end: 0, maxend: 0, maxwin: 0 }],
    liberal: first === ES,
    assured: false,
    last: { index: Index.None, dir: 0, end: 0, ack: 0 },
  };
  if (tcpSegment(conn, p, 0, false) !== 'accept') refuse('a first segment tcp_in_window rejects');
  return conn;
}

/** What the RST checks read, which act_ct's flow table leaves as they were for the segments it answers. */
const bookkeeping = (c: TcpConn) => [c.seen[0].maxack, c.seen[1].maxack, JSON.stringify(c.last)] as const;

/**
 * nf_conntrack_tcp_packet for a segment of a connection conntrack holds, in
 * direction `dir` (1: reply); `seenReply` is IPS_SEEN_REPLY before it. Moves
 * the connection's state on an accepted segment.
 */
export function tcpSegment(conn: TcpConn, p: Packet, dir: 0 | 1, seenReply: boolean): TcpVerdict {
  const flags = p.tcpFlags ?? 0;
  // act_ct's flow table may hold an assured, established connection; it answers what is not a FIN or RST
  // before conntrack sees it (tcf_ct_flow_table_lookup comes before nf_conntrack_in, even before tcp_error).
  const offloaded = conn.assured && conn.state === ES && !(flags & (FIN | RST));
  const kept = offloaded ? bookkeeping(conn) : undefined;
  const verdict = step(conn, p.tcpSeg!, flags, dir, seenReply, offloaded);
  if (kept) {
    const now = bookkeeping(conn), stale = (conn.stale ??= { maxack: [false, false], last: false });
    stale.maxack = [stale.maxack[0] || now[0] !== kept[0], stale.maxack[1] || now[1] !== kept[1]];
    stale.last ||= now[2] !== kept[2];
  }
  return verdict;
}

function step(conn: TcpConn, seg: TcpSegment, flags: number, dir: 0 | 1, seenReply: boolean, offloaded: boolean): TcpVerdict {
  if (!tcpValidFlags(flags)) {
    if (offloaded) refuse('a segment tcp_error rejects, on an assured connection act_ct\'s flow table may hold');
    return 'invalid';
  }
  const index = indexOf(flags);
  const old = conn.state;
  let next = TABLE[dir][index][old]!;
  if (offloaded && next !== ES) refuse('a segment the state table does not keep ESTABLISHED, on an assured connection act_ct\'s flow table may hold');
  let window = true; // tcp_in_window runs, unless a case below jumps to in_window
  switch (next) {
    case SS:
      if (old < TW) break;
      // RFC 1122 reopening from TIME_WAIT or CLOSE, after a FIN or an RST from this side: nf_ct_kill, -NF_REPEAT.
      if (conn.seen[0].closeInit || conn.seen[1].closeInit || (conn.last.dir === dir && conn.last.index === Index.Rst)) return 'repeat';
      return ignore(conn, seg, flags, index, dir, old); // the kernel falls through to TCP_CONNTRACK_IGNORE
    case IG:
      return ignore(conn, seg, flags, index, dir, old);
    case IV:
      return 'invalid';
    case S2:
      refuse('a simultaneous open');
    case TW:
      // RFC 5961: the answer to a SYN ignored in LAST_ACK is a challenge ACK, not the last ACK; NF_ACCEPT, no state change.
      if (old === LA && index === Index.Ack && conn.last.dir !== dir && conn.last.index === Index.Syn && conn.challengeAck) {
        conn.challengeAck = false;
        return 'accept';
      }
      break;
    case CL: {
      if (index !== Index.Rst) break;
      if (closing(old)) {
        window = false; // the tuple may be reused already: no sequence checks
        break;
      }
      const peer = conn.seen[dir === 0 ? 1 : 0], seq = u32(seg.seq);
      const established = old === ES && conn.assured;
      const stale = (what: string) => refuse(`an RST read against ${what} act_ct's flow table may have kept from conntrack`);
      if (peer.maxack !== undefined && conn.last.index !== Index.Syn) {
        if (seq === 0 && !established) break;
        if (established && conn.stale?.maxack[dir === 0 ? 1 : 0]) stale('the peer\'s td_maxack');
        if (before(seq, peer.maxack)) return 'invalid'; // "invalid rst"
        if (!established || seq === peer.maxack) break;
        // The RST right after the sender's last ACK (a train), or else keep ESTABLISHED for a challenge ACK.
        if (conn.stale?.last) stale('last_*');
        if (conn.last.index === Index.Ack && conn.last.dir === dir && seq === conn.last.end) break;
        next = old;
      }
      const ack = u32(seg.ack);
      // An RST to a SYN or a half-open ACK the table let through: no window check (it may ack what was ignored).
      if (((seenReply && conn.last.index === Index.Syn && conn.last.dir !== dir) || (!conn.assured && conn.last.index === Index.Ack)) && ack === conn.last.end) window = false;
      // An RST answering a challenge ACK to a SYN.
      else if (old === SS && conn.last.index === Index.Ack && conn.last.dir === 1 && seq === conn.last.ack) window = false;
      break;
    }
  }
  if (window) {
    const w = inWindow(conn, seg, flags, dir, index);
    // act_ct made an assured connection liberal when it offloaded it: its tcp_in_window takes anything.
    if (conn.assured && w !== 'accept') refuse('a segment tcp_in_window would not take, on an assured connection (act_ct\'s is liberal)');
    if (w === 'invalid') return 'invalid';
    if (w === 'ignore') return 'accept'; // NFCT_TCP_IGNORE: NF_ACCEPT, the state left as it was
  }
  // in_window:
  conn.last.index = index;
  conn.last.dir = dir;
  conn.state = next as TcpState;
  if (old !== next && next === FW) conn.seen[dir].closeInit = true;
  if (!seenReply) {
    // "If only reply is a RST": a connection whose first answer is an RST is deleted at once.
    if (index === Index.Rst) return 'killed';
  } else if (!conn.assured && (old === SR || old === ES) && next === ES) {
    // IPS_ASSURED: a valid ACK into ESTABLISHED after SYN_RECV, or an answer on a picked-up connection.
    conn.assured = true;
  }
  return 'accept';
}

/**
 * TCP_CONNTRACK_IGNORE: NF_ACCEPT, the state left as it was, the segment noted in last_*. A SYN/ACK answering a
 * SYN noted so would resynchronise the connection instead, which the model does not follow.
 */
function ignore(conn: TcpConn, seg: TcpSegment, flags: number, index: Index, dir: 0 | 1, old: TcpState): TcpVerdict {
  if (index === Index.SynAck && conn.last.index === Index.Syn && conn.last.dir !== dir && u32(seg.ack) === conn.last.end) refuse('a SYN/ACK answering an ignored SYN');
  conn.last = { ...conn.last, index, dir, end: endOf(seg, flags) };
  // last_flags is reset for a SYN of the original direction; in LAST_ACK its answer may be a challenge ACK.
  if (index === Index.Syn && dir === 0) conn.challengeAck = old === LA;
  // A possible challenge ACK answering a SYN: an RST to it is matched by last_ack.
  if (old === SS && index === Index.Ack && dir === 1) conn.last.ack = u32(seg.ack);
  return 'accept';
}

/** tcp_in_window without options (no SACK blocks, td_scale 0) and without NAT sequence offsets. */
function inWindow(conn: TcpConn, seg: TcpSegment, flags: number, dir: 0 | 1, index: Index): 'accept' | 'ignore' | 'invalid' {
  const sender = conn.seen[dir], receiver = conn.seen[dir === 0 ? 1 : 0];
  let seq = u32(seg.seq), end = endOf(seg, flags);
  const win = seg.window;
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
      // Mid-stream: also what a connection act_ct tore down comes back to (flow_offload_fixup_tcp).
      sender.end = end;
      sender.maxwin = win === 0 ? 1 : win;
      sender.maxend = u32(end + sender.maxwin);
      if (receiver.maxwin === 0) receiver.end = receiver.maxend = ack;
      else if (ack === u32(receiver.end + 1)) receiver.end = u32(receiver.end + 1);
    }
  } else if (flags & SYN && after(end, sender.end) && (conn.state === SS || conn.state === SR)) {
    initSender();
    if (dir === 1 && !(flags & ACK)) return 'accept';
  }
  // No ACK, or an RST with ACK and a zero ack (broken stacks): taken as acking the receiver's end.
  if (!(flags & ACK) || (flags & RST && ack === 0)) ack = receiver.end;
  // An RST answering a SYN with sequence number 0 is taken at the sender's end.
  if (flags & RST && seq === 0 && conn.state === SS) seq = end = sender.end;
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
  if (flags & ACK && (sender.maxack === undefined || after(ack, sender.maxack))) sender.maxack = ack;
  if (receiver.maxwin !== 0 && after(end, sender.maxend)) receiver.maxwin += u32(end - sender.maxend);
  if (after(u32(sack + win), u32(receiver.maxend - 1))) receiver.maxend = u32(sack + win + (win === 0 ? 1 : 0));
  // Retransmission bookkeeping: an ACK segment becomes the last one seen.
  if (index === Index.Ack) conn.last = { ...conn.last, dir, end, ack };
  return 'accept';
}
