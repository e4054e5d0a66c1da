// What Linux conntrack answers for the first packet of a connection it has
// never seen (nf_conntrack_core.c nf_conntrack_in with an empty table), as
// flower's ct_state shows it after a `ct` action. The reference classifier
// assumes +trk+new by default (what ofproto/trace is told); the offload tier
// runs real conntrack, emptied before every send, and judges with this.
import { CtState } from '../model.js';
import type { Packet } from '../packet.js';

const NEW = CtState.TRACKED | CtState.NEW;
/** No connection: nf_ct_get() is NULL after the action, which flower (skb_flow_dissect_ct) and OVS (ovs_ct_update_key) both show as +trk+inv. */
const INVALID = CtState.TRACKED | CtState.INVALID;

const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 };

/**
 * nf_conntrack_proto_tcp.c: tcp_error drops flag combinations outside
 * tcp_valid_flags (ECE, CWR and PSH ignored), then tcp_new takes only what
 * tcp_conntracks[0][index][sNO] does not mark sIV: a SYN (sSS) or, with
 * nf_conntrack_tcp_loose=1 (the default), a bare ACK picking up a connection
 * (sES). SYN+ACK, FIN, RST and no flag at all are invalid as a first packet.
 */
function tcpStartsConnection(flags: number): boolean {
  const f = flags & ~(TCP.ECE | TCP.CWR | TCP.PSH) & 0xff;
  return f === TCP.SYN || f === (TCP.SYN | TCP.URG) || f === TCP.ACK || f === (TCP.ACK | TCP.URG);
}

/** nf_conntrack_proto_icmp.c valid_new: echo, timestamp, information and address-mask requests. */
const ICMP_NEW = new Set([8, 13, 15, 17]);
/** nf_conntrack_proto_icmpv6.c valid_new: echo request and node information query. */
const ICMPV6_NEW = new Set([128, 139]);

/**
 * The ct_state a first packet gets (flower bits). `checksumsValid` says the
 * frame's L4 checksum is right: conntrack checks it at PRE_ROUTING, the hook
 * act_ct and the OVS datapath both give (nf_conntrack_checksum=1), and takes a
 * bad one as invalid.
 */
export function firstPacketState(p: Packet, checksumsValid = true): number {
  const ip = p.ip;
  if (!ip) return 0; // act_ct.c drops what is not IP before conntrack (tcf_ct_skb_nf_family)
  if (!checksumsValid) return INVALID;
  switch (ip.proto) {
    case 6:
      return tcpStartsConnection(p.tcpFlags ?? 0) ? NEW : INVALID;
    case 1:
      // icmp_error first: error types need the offending packet's connection, which a first packet has none of
      return ip.version === 4 && ICMP_NEW.has(p.icmp?.type ?? -1) ? NEW : INVALID;
    case 58:
      // icmpv6_error untracks MLD and neighbour discovery (noct_valid_new); nf_ct_get() is NULL then too
      return ip.version === 6 && ICMPV6_NEW.has(p.icmp?.type ?? -1) ? NEW : INVALID;
    case 132:
      // nf_conntrack_proto_sctp.c: a new association needs an INIT chunk (sctp_new), and a CRC32c (sctp_error)
      return INVALID;
    default:
      return NEW; // udp, udplite and the generic tracker take any first packet
  }
}
