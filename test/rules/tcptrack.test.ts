// TCP teardown in the conntrack model (rules/classify/tcptrack.ts), as Linux
// 6.1's nf_conntrack_proto_tcp.c answers it: what a ct_state match would see
// of a closing connection (ConntrackTable), and the states behind it.
import { describe, expect, it } from 'vitest';
import { CtState } from '../../rules/model.js';
import type { Packet } from '../../rules/packet.js';
import { ConntrackTable } from '../../rules/classify/conntrack.js';
import { TcpState, tcpFirst, tcpSegment, type TcpConn } from '../../rules/classify/tcptrack.js';

const FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10;
const NEW = CtState.TRACKED | CtState.NEW, EST = CtState.TRACKED | CtState.ESTABLISHED;
const RPL = EST | CtState.REPLY, INV = CtState.TRACKED | CtState.INVALID;
const ZONE = 3;
const meta = { state: 0, zone: ZONE, mark: 9, label: '0'.repeat(32) };

/** 10.0.0.1:1234 (the client) and 10.0.0.2:80 (the server); 8 bytes of data unless said. */
const seg = (fromClient: boolean, flags: number, seq: number, ack: number, dataLen = 8): Packet => ({
  inDev: fromClient ? 'vf0' : 'vf1',
  dstMac: '02:00:00:00:00:02',
  srcMac: '02:00:00:00:00:01',
  vlans: [],
  ethType: 0x0800,
  ip: { version: 4, src: fromClient ? '10.0.0.1' : '10.0.0.2', dst: fromClient ? '10.0.0.2' : '10.0.0.1', proto: 6, tos: 0, ttl: 64, frag: 'no' },
  l4: fromClient ? { src: 1234, dst: 80 } : { src: 80, dst: 1234 },
  tcpFlags: flags,
  tcpSeg: { seq, ack, window: 8192, dataLen },
  mark: 0,
  priority: 0,
  ct: { state: 0, zone: 0, mark: 0, label: '0'.repeat(32) },
});

/** The client's SYN (seq 1000, data to 1009), new and committed. */
function synCommitted(): ConntrackTable {
  const ct = new ConntrackTable();
  const syn = seg(true, SYN, 1000, 0);
  expect(ct.lookup(syn, ZONE).state).toBe(NEW);
  ct.commit(syn, ZONE, meta);
  return ct;
}

/** synCommitted, the server's SYN/ACK (5000, to 5009), and the client's ACK with data (to 1017): assured. */
function established(): ConntrackTable {
  const ct = synCommitted();
  expect(ct.lookup(seg(false, SYN | ACK, 5000, 1009), ZONE).state).toBe(RPL);
  expect(ct.lookup(seg(true, ACK, 1009, 5009), ZONE).state).toBe(EST);
  return ct;
}

/** The same handshake on the connection itself (direction 0: the client). */
function handshake(): TcpConn {
  const c = tcpFirst(seg(true, SYN, 1000, 0))!;
  expect(tcpSegment(c, seg(false, SYN | ACK, 5000, 1009), 1, false)).toBe('accept');
  expect(tcpSegment(c, seg(true, ACK, 1009, 5009), 0, true)).toBe('accept');
  expect(c).toMatchObject({ state: TcpState.Established, assured: true });
  return c;
}

describe('TCP teardown: FIN', () => {
  it('a full close is +est both ways to the last ACK; a data segment after it is still taken; a new SYN is +new on a fresh connection', () => {
    const ct = established();
    expect(ct.lookup(seg(true, FIN | ACK, 1017, 5009), ZONE).state).toBe(EST);
    expect(ct.lookup(seg(false, ACK, 5009, 1026), ZONE).state).toBe(RPL);
    expect(ct.lookup(seg(false, FIN | ACK, 5017, 1026), ZONE).state).toBe(RPL);
    expect(ct.lookup(seg(true, ACK, 1026, 5026, 0), ZONE).state).toBe(EST);
    // TIME_WAIT: tcp_conntracks keeps it there for an ACK, and tcp_in_window finds this one in the window.
    expect(ct.lookup(seg(false, ACK, 5026, 1026), ZONE).state).toBe(RPL);
    // A SYN in TIME_WAIT after a FIN: nf_ct_kill, then looked up again: a new connection, without the old mark.
    const again = ct.lookup(seg(true, SYN, 90000, 0), ZONE);
    expect(again.state).toBe(NEW);
    expect(again.known).toBeUndefined();
    // Until the new SYN is committed there is no connection: the old one is gone.
    expect(ct.lookup(seg(false, ACK, 5034, 1026), ZONE).state).toBe(NEW);
  });

  it('the states of a close: FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT; FIN takes a sequence number', () => {
    const c = handshake();
    expect(tcpSegment(c, seg(true, FIN | ACK, 1017, 5009), 0, true)).toBe('accept');
    expect(c.state).toBe(TcpState.FinWait);
    // Its data ends at 1025 and the FIN takes 1025: an ack of 1026 acks it, one of 1027 acks what was never sent.
    expect(tcpSegment(structuredClone(c), seg(false, ACK, 5009, 1026), 1, true)).toBe('accept');
    expect(() => tcpSegment(structuredClone(c), seg(false, ACK, 5009, 1027), 1, true)).toThrow(/tcp_in_window would not take/);
    expect(tcpSegment(c, seg(false, ACK, 5009, 1026), 1, true)).toBe('accept');
    expect(c.state).toBe(TcpState.CloseWait);
    expect(tcpSegment(c, seg(false, FIN | ACK, 5017, 1026), 1, true)).toBe('accept');
    expect(c.state).toBe(TcpState.LastAck);
    expect(tcpSegment(c, seg(true, ACK, 1026, 5026, 0), 0, true)).toBe('accept');
    expect(c.state).toBe(TcpState.TimeWait);
  });

  it('a FIN/ACK sent again reads as the FIN of both sides (FIN_WAIT to LAST_ACK), so the peer\'s ACK ends in TIME_WAIT', () => {
    const c = handshake();
    for (let i = 0; i < 2; i++) expect(tcpSegment(c, seg(true, FIN | ACK, 1017, 5009), 0, true)).toBe('accept');
    expect(c.state).toBe(TcpState.LastAck);
    expect(tcpSegment(c, seg(false, ACK, 5009, 1026), 1, true)).toBe('accept');
    expect(c.state).toBe(TcpState.TimeWait);
  });

  it('a FIN before the SYN/ACK is invalid; one after it, before the handshake\'s ACK, starts the close', () => {
    const ct = synCommitted();
    expect(ct.lookup(seg(true, FIN | ACK, 1009, 0), ZONE).state).toBe(INV);
    const c = tcpFirst(seg(true, SYN, 1000, 0))!;
    tcpSegment(c, seg(false, SYN | ACK, 5000, 1009), 1, false);
    expect(tcpSegment(c, seg(true, FIN | ACK, 1009, 5009), 0, true)).toBe('accept');
    expect(c.state).toBe(TcpState.FinWait);
  });

  it('a SYN ignored in LAST_ACK makes the next ACK back a challenge ACK (RFC 5961): LAST_ACK stays until the real last ACK', () => {
    const c = handshake();
    tcpSegment(c, seg(true, FIN | ACK, 1017, 5009), 0, true);
    tcpSegment(c, seg(false, FIN | ACK, 5009, 1026), 1, true);
    expect(c.state).toBe(TcpState.LastAck);
    expect(tcpSegment(c, seg(true, SYN, 1026, 0, 0), 0, true)).toBe('accept');
    expect(c.state).toBe(TcpState.LastAck);
    expect(tcpSegment(c, seg(false, ACK, 5018, 1026, 0), 1, true)).toBe('accept');
    expect(c.state).toBe(TcpState.LastAck);
    expect(tcpSegment(c, seg(true, ACK, 1026, 5018, 0), 0, true)).toBe('accept');
    expect(c.state).toBe(TcpState.TimeWait);
  });
});

describe('TCP teardown: RST', () => {
  it('an RST below the peer\'s last ack is invalid and leaves the connection; one at it closes; an ACK after is +est', () => {
    const ct = established();
    // The client acked up to 5009: an RST from the server at 4000 is out of the window ("invalid rst").
    expect(ct.lookup(seg(false, RST, 4000, 0, 0), ZONE).state).toBe(INV);
    expect(ct.lookup(seg(false, ACK, 5009, 1017), ZONE).state).toBe(RPL);
    const c = handshake();
    tcpSegment(c, seg(false, RST, 4000, 0, 0), 1, true);
    expect(c.state).toBe(TcpState.Established);
    expect(tcpSegment(c, seg(false, RST, 5009, 0, 0), 1, true)).toBe('accept');
    expect(c.state).toBe(TcpState.Close);
    // CLOSE: an ACK keeps it there, through the window check.
    expect(tcpSegment(c, seg(true, ACK, 1017, 5009), 0, true)).toBe('accept');
    expect(c.state).toBe(TcpState.Close);
  });

  it('an RST in the window but not at the peer\'s ack keeps ESTABLISHED (for a challenge ACK); at the end of the sender\'s last ACK it closes', () => {
    const c = handshake();
    expect(tcpSegment(c, seg(false, RST, 5100, 0, 0), 1, true)).toBe('accept');
    expect(c.state).toBe(TcpState.Established);
    // The client's ACK carried data to 1017, the server acked 1009: an RST from the client at 1017 follows its ACK.
    const train = handshake();
    expect(tcpSegment(train, seg(true, RST, 1017, 0, 0), 0, true)).toBe('accept');
    expect(train.state).toBe(TcpState.Close);
  });

  it('after a segment act_ct\'s flow table may have answered, an RST whose checks read what it changed is refused; one at the peer\'s ack is not', () => {
    const c = handshake();
    tcpSegment(c, seg(false, ACK, 5009, 1017), 1, true); // the server's data (5009 to 5017): last_* and its td_maxack move
    expect(() => tcpSegment(structuredClone(c), seg(false, RST, 5017, 0, 0), 1, true)).toThrow(/flow table may have kept/);
    expect(() => tcpSegment(structuredClone(c), seg(true, RST, 1017, 0, 0), 0, true)).toThrow(/flow table may have kept/);
    // The client acked 5009 before the offload, and still: the server's RST at 5009 closes either way.
    expect(tcpSegment(c, seg(false, RST, 5009, 0, 0), 1, true)).toBe('accept');
    expect(c.state).toBe(TcpState.Close);
  });

  it('an RST on a closing connection is taken without sequence checks (tcp_can_early_drop)', () => {
    const c = handshake();
    tcpSegment(c, seg(true, FIN | ACK, 1017, 5009), 0, true);
    expect(tcpSegment(c, seg(false, RST, 1, 0, 0), 1, true)).toBe('accept');
    expect(c.state).toBe(TcpState.Close);
  });

  it('an RST answering a SYN, before any reply, deletes the connection: what follows is a first packet', () => {
    const ct = synCommitted();
    // The server refuses: RST|ACK with sequence number 0 is taken at the server's end, its ack at the SYN's end.
    expect(ct.lookup(seg(false, RST | ACK, 0, 1009, 0), ZONE).state).toBe(RPL);
    expect(ct.lookup(seg(true, SYN, 1000, 0), ZONE).known).toBeUndefined();
    expect(ct.lookup(seg(false, SYN | ACK, 5000, 1009), ZONE).state).toBe(INV);
  });

  it('an RST that acks a SYN the table ignored is checked against last_end, not the window', () => {
    // SYN_RECV ignores a new SYN from the client and notes where it ends (last_end 3009).
    const open = () => {
      const c = tcpFirst(seg(true, SYN, 1000, 0))!;
      tcpSegment(c, seg(false, SYN | ACK, 5000, 1009), 1, false);
      expect(tcpSegment(c, seg(true, SYN, 3000, 0), 0, true)).toBe('accept');
      expect(c.state).toBe(TcpState.SynRecv);
      return c;
    };
    // The server's RST acking it closes, even with a sequence number far outside its window.
    const c = open();
    expect(tcpSegment(c, seg(false, RST | ACK, 900000, 3009, 0), 1, true)).toBe('accept');
    expect(c.state).toBe(TcpState.Close);
    // Acking anything else it meets the window: invalid.
    const d = open();
    expect(tcpSegment(d, seg(false, RST | ACK, 900000, 1009, 0), 1, true)).toBe('invalid');
    expect(d.state).toBe(TcpState.SynRecv);
  });

  it('after an RST, a SYN from its side reopens the connection (+new); one from the other side is ignored (+est)', () => {
    const ct = established();
    expect(ct.lookup(seg(false, RST, 5009, 0, 0), ZONE).state).toBe(RPL);
    expect(ct.lookup(seg(true, SYN, 7000, 0), ZONE).state).toBe(EST);
    const c = handshake();
    tcpSegment(c, seg(true, RST, 1017, 0, 0), 0, true);
    expect(tcpSegment(c, seg(true, SYN, 7000, 0), 0, true)).toBe('repeat');
  });
});

describe('what the model refuses rather than guess', () => {
  it('on an assured connection: a segment the strict window would not take (act_ct\'s liberal one would), a SYN act_ct\'s flow table would answer; simultaneous open', () => {
    const c = handshake();
    // Data beyond what the server allowed (its window 8192 from 1009): OVS's datapath says invalid, act_ct takes it.
    expect(() => tcpSegment(c, seg(true, ACK, 20000, 5009), 0, true)).toThrow(/tcp_in_window would not take/);
    expect(() => tcpSegment(c, seg(true, SYN, 1000, 0), 0, true)).toThrow(/flow table may hold/);
    const s = tcpFirst(seg(true, SYN, 1000, 0))!;
    expect(() => tcpSegment(s, seg(false, SYN, 5000, 0), 1, false)).toThrow(/simultaneous open/);
  });
});
