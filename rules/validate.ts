// Semantic checks a flower filter must pass, shared by every decoder so a rule
// is judged the same whether it came as text or as netlink. The kernel silently
// ignores keys whose prerequisite is missing (cls_flower.c fl_set_key only reads
// ports when ip_proto says TCP, ...); a guest that asked for a key must not get
// a rule that quietly matches more, so vpf refuses those with EINVAL instead.
import { ipFamily } from './addr.js';
import { Errno, VpfError } from './errors.js';
import type { Action, Control, FlowerMatch, FlowerRule } from './model.js';
import { CtState, EthP, IpProto } from './model.js';
import { isRepName } from './ports.js';
import { burstToTicks } from './psched.js';

const isVlanTpid = (p: number | undefined) => p === EthP.VLAN_8021Q || p === EthP.VLAN_8021AD;

/**
 * The network protocol the filter's packets carry, after the VLAN tags its
 * keys describe (cls_flower.c fl_set_key: vlan_ethtype becomes n_proto unless
 * it is itself a TPID, then cvlan_ethtype does). `protocol all` sends no
 * eth_type; with num_of_vlans its vlan_ethtype still sets n_proto (is_vlan_key).
 */
export function l3Protocol(m: FlowerMatch): number | undefined {
  if (m.ethType !== undefined && !isVlanTpid(m.ethType)) return m.ethType;
  if (!isVlanTpid(m.vlanEthType)) return m.vlanEthType;
  return m.cvlanEthType;
}

const fail = (errno: number, msg: string, attr?: string): never => {
  throw new VpfError(errno, msg, attr);
};

function checkKeys(m: FlowerMatch): void {
  const l3 = l3Protocol(m);
  const isIp = l3 === EthP.IP || l3 === EthP.IPV6;
  const tagged = isVlanTpid(m.ethType) || (m.numOfVlans ?? 0) >= 1;
  const doubleTagged = (tagged && isVlanTpid(m.vlanEthType)) || (m.numOfVlans ?? 0) >= 2;
  if ((m.vlanId !== undefined || m.vlanPrio !== undefined || m.vlanEthType !== undefined) && !tagged) {
    fail(Errno.EINVAL, 'vlan keys need protocol 802.1Q or 802.1ad', 'vlan_id');
  }
  if ((m.cvlanId !== undefined || m.cvlanPrio !== undefined || m.cvlanEthType !== undefined) && !doubleTagged) {
    fail(Errno.EINVAL, 'cvlan keys need an outer VLAN whose vlan_ethtype is 802.1Q or 802.1ad', 'cvlan_id');
  }
  if (m.vlanId !== undefined && m.vlanId > 4095) fail(Errno.EINVAL, 'vlan_id is 12 bits', 'vlan_id');
  if (m.cvlanId !== undefined && m.cvlanId > 4095) fail(Errno.EINVAL, 'cvlan_id is 12 bits', 'cvlan_id');
  if (m.vlanPrio !== undefined && m.vlanPrio > 7) fail(Errno.EINVAL, 'vlan_prio is 3 bits', 'vlan_prio');
  if (m.cvlanPrio !== undefined && m.cvlanPrio > 7) fail(Errno.EINVAL, 'cvlan_prio is 3 bits', 'cvlan_prio');
  const mpls = [m.mplsLabel, m.mplsTc, m.mplsBos, m.mplsTtl].some((x) => x !== undefined);
  if (mpls && l3 !== EthP.MPLS_UC && l3 !== EthP.MPLS_MC) fail(Errno.EINVAL, 'mpls keys need protocol mpls_uc or mpls_mc', 'mpls_label');
  // cls_flower.c fl_set_key_mpls: label 20 bits, tc 3, bos 1.
  if (m.mplsLabel !== undefined && m.mplsLabel > 0xfffff) fail(Errno.ERANGE, 'Bottom Of Stack (BOS) must be 0 or 1', 'mpls_label');
  if (m.mplsTc !== undefined && m.mplsTc > 7) fail(Errno.ERANGE, 'Traffic Class (TC) must be between 0 and 7', 'mpls_tc');
  if (m.mplsBos !== undefined && m.mplsBos > 1) fail(Errno.ERANGE, 'Bottom Of Stack (BOS) must be 0 or 1', 'mpls_bos');
  if ((m.ipProto !== undefined || m.ipTos || m.ipTtl) && !isIp) fail(Errno.EINVAL, 'ip_proto, ip_tos and ip_ttl need protocol ip or ipv6', 'ip_proto');
  for (const [k, v] of [['src_ip', m.srcIp], ['dst_ip', m.dstIp]] as const) {
    if (!v) continue;
    const want = ipFamily(v.value) === 4 ? EthP.IP : EthP.IPV6;
    if (l3 !== want) fail(Errno.EINVAL, `${k} ${v.value} needs protocol ${want === EthP.IP ? 'ip' : 'ipv6'}`, k);
  }
  const l4 = m.ipProto === IpProto.TCP || m.ipProto === IpProto.UDP || m.ipProto === IpProto.SCTP;
  if ((m.srcPort || m.dstPort || m.srcPortRange || m.dstPortRange) && !l4) fail(Errno.EINVAL, 'ports need ip_proto tcp, udp or sctp', 'dst_port');
  if (m.srcPort && m.srcPortRange) fail(Errno.EINVAL, 'src_port given both as a port and as a range', 'src_port');
  if (m.dstPort && m.dstPortRange) fail(Errno.EINVAL, 'dst_port given both as a port and as a range', 'dst_port');
  for (const r of [m.srcPortRange, m.dstPortRange]) {
    // cls_flower.c fl_set_key_port_range.
    if (r && !(r.min < r.max)) fail(Errno.EINVAL, 'Invalid port range (min must be strictly smaller than max)', 'port range');
  }
  if (m.tcpFlags && m.ipProto !== IpProto.TCP) fail(Errno.EINVAL, 'tcp_flags need ip_proto tcp', 'tcp_flags');
  if (m.tcpFlags && (m.tcpFlags.value > 0xfff || m.tcpFlags.mask > 0xfff)) fail(Errno.EINVAL, 'tcp_flags are 12 bits', 'tcp_flags');
  if (m.icmpType || m.icmpCode) {
    const ok = (m.ipProto === IpProto.ICMP && l3 === EthP.IP) || (m.ipProto === IpProto.ICMPV6 && l3 === EthP.IPV6);
    if (!ok) fail(Errno.EINVAL, 'icmp type/code need ip_proto icmp with protocol ip, or icmpv6 with ipv6', 'type');
  }
  const arp = m.arpSip || m.arpTip || m.arpOp || m.arpSha || m.arpTha;
  if (arp && l3 !== EthP.ARP && l3 !== EthP.RARP) fail(Errno.EINVAL, 'arp keys need protocol arp or rarp', 'arp_op');
  if (m.ipFlags && (m.ipFlags.value & ~3 || m.ipFlags.mask & ~3)) fail(Errno.EINVAL, 'ip_flags knows frag and firstfrag only', 'ip_flags');
  if (m.ctState) checkCtState(m.ctState.value, m.ctState.mask);
  if (m.indev !== undefined && (m.indev.length === 0 || m.indev.length > 15)) fail(Errno.EINVAL, 'indev must be 1..15 characters', 'indev');
  for (const o of [...(m.encOpts?.geneve?.value ?? []), ...(m.encOpts?.geneve?.mask ?? [])]) {
    if (o.data.length === 0 || o.data.length % 8 || o.data.length > 248) fail(Errno.EINVAL, 'geneve option data must be 4..124 bytes, a multiple of 4', 'geneve_opts');
  }
}

const CT_KNOWN = CtState.NEW | CtState.ESTABLISHED | CtState.RELATED | CtState.TRACKED | CtState.INVALID | CtState.REPLY;

/** cls_flower.c fl_validate_ct_state, with its extack texts. */
function checkCtState(value: number, mask: number): void {
  if ((value | mask) & ~CT_KNOWN) fail(Errno.EINVAL, 'ct_state has flags the kernel does not know', 'ct_state');
  const state = value & mask;
  if (state && !(state & CtState.TRACKED)) fail(Errno.EINVAL, 'no trk, so no other flag can be set', 'ct_state');
  if (state & CtState.NEW && state & CtState.ESTABLISHED) fail(Errno.EINVAL, 'new and est are mutually exclusive', 'ct_state');
  if (state & CtState.INVALID && state & ~(CtState.TRACKED | CtState.INVALID)) fail(Errno.EINVAL, 'when inv is set, only trk may be set', 'ct_state');
  if (state & CtState.NEW && state & CtState.REPLY) fail(Errno.EINVAL, 'new and rpl are mutually exclusive', 'ct_state');
}

function checkControl(c: Control, where: string): void {
  if (c.kind === 'goto' && (c.chain < 0 || c.chain > 0x0fffffff)) fail(Errno.EINVAL, `${where}: goto chain beyond 0x0fffffff`, where);
  if (c.kind === 'jump' && (c.count < 1 || c.count > 32)) fail(Errno.EINVAL, `${where}: jump count must be 1..32`, where);
}

/** An action's own checks (the action API's RTM_NEWACTION runs them too). */
export function checkAction(a: Action, i: number): void {
  const where = `action ${i + 1} (${a.kind})`;
  checkControl(a.control, where);
  switch (a.kind) {
    case 'mirred':
      // tcf_mirred_init: the target device must exist (here: one of the VM's representors).
      if (!isRepName(a.dev)) fail(Errno.ENODEV, `${where}: no representor named ${a.dev}`, 'mirred dev');
      break;
    case 'vlan':
      if (a.op !== 'pop') {
        if (a.id > 4095) fail(Errno.ERANGE, `${where}: vlan id ${a.id} out of range`, 'vlan id');
        if (a.prio !== undefined && a.prio > 7) fail(Errno.ERANGE, `${where}: vlan priority out of range`, 'vlan priority');
        // act_vlan.c tcf_vlan_init: only 802.1Q and 802.1ad tags can be pushed.
        if (a.protocol !== undefined && !isVlanTpid(a.protocol)) fail(Errno.EPROTONOSUPPORT, `${where}: vlan protocol 0x${a.protocol.toString(16)} is not 802.1Q or 802.1ad`, 'vlan protocol');
      }
      break;
    case 'pedit':
      if (a.keys.length === 0 || a.keys.length > 128) fail(Errno.EINVAL, `${where}: 1..128 keys`, 'pedit');
      for (const k of a.keys) if (k.offset % 4 || k.offset < 0) fail(Errno.EINVAL, `${where}: key offset ${k.offset} is not a positive multiple of 4`, 'pedit');
      break;
    case 'police':
      checkControl(a.exceed, where);
      // A police naming an index is a reference (OVS's `police index N`): the agent binds the shared action, or the
      // kernel creates one without a rate (act_police.c: no rate table, never exceeds). Unnamed, it needs a rate.
      if (!a.rate && !a.pktsPerSec && !a.avrate && !a.index) fail(Errno.EINVAL, `${where}: needs a rate`, 'police');
      if (a.rate && a.pktsPerSec) fail(Errno.EINVAL, 'Byte and packet rate limits cannot be combined', 'police');
      // tc_police.burst holds psched ticks in a u32.
      if (a.rate && a.burst !== undefined && burstToTicks(a.burst, a.rate) > 0xffffffff) fail(Errno.EINVAL, `${where}: burst lasts longer than the scheduler clock can hold`, 'police burst');
      if (a.pktsPerSec && a.pktBurst !== undefined && burstToTicks(a.pktBurst, a.pktsPerSec) > 0xffffffff) fail(Errno.EINVAL, `${where}: pkts_burst too long`, 'police pkts_burst');
      break;
    case 'sample':
      if (a.rate === 0) fail(Errno.EINVAL, 'invalid sample rate', 'sample rate');
      break;
    case 'mpls':
      if ('label' in a && a.label !== undefined && a.label > 0xfffff) fail(Errno.ERANGE, `${where}: MPLS label out of range`, 'mpls label');
      if ('tc' in a && a.tc !== undefined && a.tc > 7) fail(Errno.ERANGE, `${where}: MPLS TC out of range`, 'mpls tc');
      if ('bos' in a && a.bos !== undefined && a.bos > 1) fail(Errno.ERANGE, `${where}: MPLS BOS out of range`, 'mpls bos');
      break;
    case 'ct':
      if (a.nat && a.nat.type !== 'restore' && a.nat.addrMin && a.nat.addrMax && ipFamily(a.nat.addrMin) !== ipFamily(a.nat.addrMax)) {
        fail(Errno.EINVAL, `${where}: nat address range mixes families`, 'ct nat');
      }
      break;
    default:
      break;
  }
}

/** undefined when the rule is one the kernel would accept; otherwise the errno and extack it would give. */
export function validateRule(rule: FlowerRule): VpfError | undefined {
  try {
    if (!isRepName(rule.dev)) fail(Errno.ENODEV, `no representor named ${rule.dev}`, 'dev');
    if (rule.prio < 0 || rule.prio > 0xffff) fail(Errno.EINVAL, 'prio is 16 bits', 'prio');
    if (rule.chain < 0 || rule.chain > 0x0fffffff) fail(Errno.EINVAL, 'Specified chain index exceeds upper limit', 'chain');
    if (rule.flags.skipHw && rule.flags.skipSw) fail(Errno.EINVAL, 'skip_sw and skip_hw are mutually exclusive', 'flags');
    if (rule.actions.length > 32) fail(Errno.E2BIG, 'too many actions (32 at most)', 'action');
    checkKeys(rule.match);
    rule.actions.forEach(checkAction);
    return undefined;
  } catch (e) {
    if (e instanceof VpfError) return e;
    throw e;
  }
}
