// The reference classifier: what a Linux ingress clsact with these flower
// filters does to one packet. It is the specification the translator is
// tested against, so every choice cites the kernel code it follows.
//
// Order (net/sched/cls_api.c tcf_classify/__tcf_classify): chain 0 first; in
// a chain, tcf_protos by ascending prio; in one flower tcf_proto, masks in the
// order they were first inserted (cls_flower.c fl_init_mask_hashtable /
// list_add_tail_rcu in fl_create_new_mask) and per mask the filter with equal
// masked key. `rules` must therefore be given in install order.
import type { Action, Control, FlowerRule } from './model.js';
import { CtState } from './model.js';
import type { CtMeta, Destination, Emit, Outcome, Packet, TraceStep } from './packet.js';
import type { Conntrack, CtLookup, NatRewrite } from './classify/conntrack.js';
import { keysMatch, maskShape, protocolMatches } from './classify/match.js';
import { applyPedit } from './classify/pedit.js';

export interface ClassifyOptions {
  /**
   * What conntrack answers for a packet at a `ct` action (its state bits, in
   * flower's layout, and its connection's mark and label), and what a commit
   * records. Default: a new connection, +trk+new, and nothing recorded (what
   * ofproto/trace is told); rules/classify/conntrack.ts has a real kernel's.
   */
  conntrack?: Conntrack;
  /**
   * Partial offload: (rule, packet) pairs the hardware path holds only as a
   * trap. Such a rule takes the packet at its place in the order and hands it
   * to software (the translator's trap flow); neither its protocol nor its
   * keys are consulted: the hook states what the trap covers.
   */
  trapped?: (rule: FlowerRule, packet: Packet, emits: readonly Emit[]) => boolean;
  /**
   * Hardware's hand-off: what reaches the representor on a miss, trap or pass
   * is the packet as it arrived, every rewrite undone (vpf's restore flows,
   * docs/mapping.md), so that the guest's software can run chain 0 on it.
   * A rewrite that cannot be undone must never precede a hand-off. Mirror
   * copies made before a hand-off are not sent either: vpf defers a copy to
   * where the path ends in hardware (software makes it again after a hand-off).
   */
  handOffRestores?: boolean;
}

/** cls_api.c __tcf_classify: more than this many reclassifies and gotos, together, drop the packet ("reclassify loop"). */
export const MAX_RECLASSIFY_LOOP = 16;
/** act_api.c tcf_action_exec: a jump may not loop more than this. */
const MAX_JUMPS = 32;

type Verdict = { kind: 'pass' } | { kind: 'drop' } | { kind: 'stolen' } | { kind: 'trap' } | { kind: 'continue' } | { kind: 'reclassify' } | { kind: 'goto'; chain: number };

const clone = (p: Packet): Packet => structuredClone(p);

const defaultConntrack: Conntrack = { lookup: () => ({ state: CtState.TRACKED | CtState.NEW }) };

/** What one packet's pass carries between actions: the connection a `ct` gave it, and in which zone. */
interface Pass {
  ct?: { zone: number; found: CtLookup };
}

/** Runs one action; returns its control verdict after its effect (act_api.c tcf_action_exec). */
function runAction(a: Action, p: Packet, emits: Emit[], opts: ClassifyOptions, pass: Pass): Control {
  switch (a.kind) {
    case 'gact':
      return a.control;
    case 'mirred': {
      // act_mirred.c: egress transmits on the device (here: the VF/wire behind the representor);
      // ingress injects into its receive path (here: the guest's representor).
      const to: Destination = a.direction === 'egress' ? { kind: 'port', dev: a.dev } : { kind: 'rep', dev: a.dev };
      emits.push({ to, packet: clone(p), ...(a.control.kind !== 'stolen' ? { copy: true as const } : {}) });
      return a.control;
    }
    case 'vlan':
      if (a.op === 'pop') p.vlans.shift();
      else if (a.op === 'push') p.vlans.unshift({ tpid: a.protocol ?? 0x8100, vid: a.id, pcp: a.prio ?? 0 });
      else if (p.vlans[0]) {
        // act_vlan.c (6.1): modify keeps the PCP unless a priority was given, and puts the tag back with the
        // action's protocol, 802.1Q unless given (tcfv_push_proto), whatever the TPID was.
        p.vlans[0].vid = a.id;
        if (a.prio !== undefined) p.vlans[0].pcp = a.prio;
        p.vlans[0].tpid = a.protocol ?? 0x8100;
      }
      return a.control;
    case 'pedit':
      applyPedit(p, a.keys);
      return a.control;
    case 'csum':
    case 'sample':
      return a.control; // checksums and samples have no effect the packet model shows
    case 'tunnel_key':
      if (a.op === 'unset') delete p.tunnel;
      else p.tunnel = { id: a.id ?? 0, src: a.srcIp ?? '0.0.0.0', dst: a.dstIp ?? '0.0.0.0', dstPort: a.dstPort ?? 0, tos: a.tos ?? 0, ttl: a.ttl ?? 0 };
      return a.control;
    case 'ct': {
      if (a.clear) {
        p.ct = { state: 0, zone: 0, mark: 0, label: '0'.repeat(32) };
        delete pass.ct;
        return a.control;
      }
      // act_ct.c tcf_ct_act: conntrack reassembles first (tcf_ct_handle_fragments); a fragment whose datagram
      // is not whole is held for the rest, TC_ACT_STOLEN. The model's packets are single, so a fragment stays held.
      if (p.ip && p.ip.frag !== 'no') return { kind: 'stolen' };
      const zone = a.zone ?? 0;
      const conntrack = opts.conntrack ?? defaultConntrack;
      // act_ct.c tcf_ct_skb_nfct_cached (OVS: skb_nfct_cached): a packet still holding the connection an earlier ct
      // of this zone gave it is not run through conntrack again (a TCP segment moves its connection's state once).
      // Its mark and label are the connection's as this pass left them.
      const cached = pass.ct?.zone === zone ? pass.ct.found : undefined;
      const found: CtLookup = cached ? { state: cached.state, ...(cached.known ? { known: true } : {}), ...(cached.nat ? { nat: cached.nat } : {}) } : conntrack.lookup(p, zone);
      const state = found.state;
      if (state & CtState.INVALID) {
        delete pass.ct;
        // No connection (act_ct.c: nf_ct_get() is NULL): nothing to commit or NAT; flower sees only +trk+inv and the zone.
        p.ct = { state, zone, mark: 0, label: '0'.repeat(32) };
        return a.control;
      }
      // A connection conntrack knew was confirmed by an earlier packet; in this pass, a commit of the same zone
      // confirmed it (act_ct.c tcf_ct_skb_nfct_cached: the same zone keeps the packet's connection).
      const confirmed = !!found.known || (!!p.ct.confirmed && p.ct.zone === zone);
      const { confirmed: _, ...prev } = p.ct;
      const ct: CtMeta = { ...prev, zone, state, ...(confirmed || a.commit ? { confirmed: true } : {}) };
      // A connection conntrack already had brings its own mark and label.
      if (found.mark !== undefined) ct.mark = found.mark;
      if (found.label !== undefined) ct.label = found.label;
      if (a.commit && a.mark) ct.mark = ((ct.mark & ~a.mark.mask) | (a.mark.value & a.mark.mask)) >>> 0;
      if (a.commit && a.label) {
        const v = Buffer.from(a.label.value, 'hex'), m = Buffer.from(a.label.mask, 'hex'), o = Buffer.from(ct.label.padEnd(32, '0'), 'hex');
        for (let i = 0; i < 16; i++) o[i] = (o[i]! & ~m[i]!) | (v[i]! & m[i]!);
        ct.label = o.toString('hex');
      }
      p.ct = ct;
      pass.ct = { zone, found };
      // act_ct.c tcf_ct_act_nat rewrites the packet in place: by the connection's binding when it has one (either
      // direction, for any nat action), else by the action's range on an unconfirmed connection (nf_nat_setup_info;
      // the model takes the range's lowest address and port).
      let rewrite: NatRewrite | undefined;
      if (a.nat && p.ip) {
        if (found.nat) rewrite = found.nat;
        else if (a.nat.type !== 'restore' && !confirmed) rewrite = { side: a.nat.type, ...(a.nat.addrMin ? { addr: a.nat.addrMin } : {}), ...(a.nat.portMin !== undefined ? { port: a.nat.portMin } : {}) };
      }
      if (a.commit) conntrack.commit?.(p, zone, ct, found.nat ? undefined : rewrite);
      if (rewrite && p.ip) {
        if (rewrite.addr) p.ip[rewrite.side] = rewrite.addr;
        if (rewrite.port !== undefined && p.l4) p.l4[rewrite.side] = rewrite.port;
      }
      return a.control;
    }
    case 'police':
      // A per-packet model has no token bucket: every packet conforms (docs/semantics.md).
      return a.control;
    case 'skbedit':
      if (a.mark) p.mark = ((p.mark & ~a.mark.mask) | (a.mark.value & a.mark.mask)) >>> 0;
      if (a.priority !== undefined) p.priority = a.priority;
      return a.control;
    case 'mpls': {
      const stack = (p.mpls ??= []);
      if (a.op === 'push' || a.op === 'mac_push') {
        stack.unshift({ label: a.label ?? 0, tc: a.tc ?? 0, bos: a.bos ?? (stack.length ? 0 : 1), ttl: a.ttl ?? p.ip?.ttl ?? 255 });
        p.ethType = a.protocol;
      } else if (a.op === 'pop') {
        stack.shift();
        if (!stack.length) {
          delete p.mpls;
          p.ethType = a.protocol;
        }
      } else if (a.op === 'modify' && stack[0]) {
        if (a.label !== undefined) stack[0].label = a.label;
        if (a.tc !== undefined) stack[0].tc = a.tc;
        if (a.ttl !== undefined) stack[0].ttl = a.ttl;
        if (a.bos !== undefined) stack[0].bos = a.bos;
      } else if (a.op === 'dec_ttl' && stack[0]) stack[0].ttl = (stack[0].ttl + 255) & 0xff;
      return a.control;
    }
  }
}

/**
 * act_api.c tcf_action_exec: actions in order; PIPE goes on, anything else ends
 * the list but JUMP N, which walks the list again from its start skipping N
 * actions (so it lands on action N wherever it was, not N after itself). A
 * jump of 0, to the end or past it, and the 32nd jump of a walk (jmp_ttl) end
 * it with TC_ACT_OK.
 */
function runActions(actions: Action[], p: Packet, emits: Emit[], opts: ClassifyOptions, pass: Pass): Verdict {
  let jumps = 0;
  for (let i = 0; i < actions.length; i++) {
    const c = runAction(actions[i]!, p, emits, opts, pass);
    if (c.kind === 'pipe') continue;
    if (c.kind === 'jump') {
      if (c.count === 0 || c.count >= actions.length || ++jumps >= MAX_JUMPS) return { kind: 'pass' };
      i = c.count - 1;
      continue;
    }
    return c;
  }
  // The last action piped: tcf_action_exec returns PIPE (>= 0), which sch_handle_ingress treats like OK.
  return { kind: 'pass' };
}

/** The filters of one chain in evaluation order: prio ascending, then mask insertion order. */
function chainOrder(rules: FlowerRule[]): FlowerRule[] {
  const byPrio = new Map<number, FlowerRule[]>();
  for (const r of rules) {
    const l = byPrio.get(r.prio) ?? [];
    l.push(r);
    byPrio.set(r.prio, l);
  }
  const out: FlowerRule[] = [];
  for (const prio of [...byPrio.keys()].sort((a, b) => a - b)) {
    const masks = new Map<string, FlowerRule[]>();
    for (const r of byPrio.get(prio)!) {
      const k = maskShape(r.match);
      const l = masks.get(k) ?? [];
      l.push(r);
      masks.set(k, l);
    }
    for (const l of masks.values()) out.push(...l);
  }
  return out;
}

export function classify(rules: FlowerRule[], packet: Packet, opts: ClassifyOptions = {}): Outcome {
  const mine = rules.filter((r) => r.dev === packet.inDev && r.direction === 'ingress');
  const chains = new Map<number, FlowerRule[]>();
  for (const r of mine) chains.set(r.chain, [...(chains.get(r.chain) ?? []), r]);
  const ordered = new Map([...chains].map(([c, l]) => [c, chainOrder(l)]));
  const p = clone(packet);
  const emits: Emit[] = [];
  const trace: TraceStep[] = [];
  const pass: Pass = {};
  const slowpath = (): Outcome => ({
    emits: [...(opts.handOffRestores ? emits.filter((e) => !e.copy) : emits), { to: { kind: 'rep', dev: packet.inDev }, packet: opts.handOffRestores ? { ...clone(packet), ct: p.ct } : p }],
    final: 'slowpath',
    trace,
  });
  let chain = 0;
  // One count for both: __tcf_classify's `limit` goes up at every restart, a goto's or a reclassify's.
  let restarts = 0;
  const looped = (): Outcome => ({ emits, final: 'dropped', looped: true, trace });
  next_chain: for (;;) {
    // After a continue, the rest of that prio: fl_classify returns the first matching filter's verdict, and
    // TC_ACT_UNSPEC sends __tcf_classify on to the next tcf_proto (checked on a 6.1 kernel).
    let passed: number | undefined;
    for (const r of ordered.get(chain) ?? []) {
      if (r.prio === passed) continue;
      if (opts.trapped?.(r, p, emits)) {
        trace.push({ chain: r.chain, prio: r.prio, handle: r.handle, verdict: 'trap (not offloaded)' });
        return slowpath();
      }
      if (!protocolMatches(r, p) || !keysMatch(r.match, p)) continue;
      // tcf_exts_exec: a filter without actions returns TC_ACT_OK, which ends classification.
      const v = r.actions.length ? runActions(r.actions, p, emits, opts, pass) : ({ kind: 'pass' } as Verdict);
      trace.push({ chain: r.chain, prio: r.prio, handle: r.handle, verdict: v.kind === 'goto' ? `goto chain ${v.chain}` : v.kind });
      switch (v.kind) {
        case 'continue':
          passed = r.prio;
          continue;
        case 'goto':
          if (++restarts > MAX_RECLASSIFY_LOOP) return looped();
          chain = v.chain;
          continue next_chain;
        case 'reclassify':
          if (++restarts > MAX_RECLASSIFY_LOOP) return looped();
          chain = 0;
          continue next_chain;
        case 'drop':
          return { emits, final: 'dropped', trace };
        case 'stolen':
          return { emits, final: 'redirected', trace };
        case 'pass':
        case 'trap':
          return slowpath();
      }
    }
    // No filter took the packet: it continues up the stack, i.e. to the guest's representor.
    return slowpath();
  }
}
