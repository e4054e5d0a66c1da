// in_hw from facts. OVS offloads datapath flows, made by traffic, not OpenFlow
// rules: whether a guest rule runs in the NIC is known only from the datapath
// flows its OpenFlow flows produced and whether OVS's tc offload took them
// (`dpctl/dump-flows -m`: dp:tc, or dp:ovs when it refused). One ledger per
// host: the kernel datapath is shared by every VM's bridge.
//
//   dpctl/dump-flows -m ──► new ufid? ──► ofproto/trace KEY ──► (bridge, cookie)*
//          │                                                      │
//          └───────────── packets, bytes, dp:tc|ovs ◄─────────────┘
//                                  │
//                 hardwareByRule(bridge) ──► per rule: tc flows, software flows, counters
import type { Logger } from 'pino';
import { parseDpctlFlows, parseTraceSteps, type DatapathFlow, type TraceStep } from '../ovs/ctl/offload.js';
import type { UnixctlClient } from '../ovs/unixctl.js';
import { cookieKind, cookieRuleId, FlowKind } from '../translator/cookie.js';

export interface TracedFlow extends DatapathFlow {
  /** The OpenFlow flows its packets went through (empty when the trace failed). */
  steps: TraceStep[];
}

/** What the datapath says of one guest rule. */
export interface RuleHardware {
  /** Datapath flows through this rule's flows that OVS put into tc (a NIC). */
  tcFlows: number;
  /** Datapath flows through this rule's flows that stayed in the kernel datapath (software). */
  softwareFlows: number;
  /** Counters of the tc flows: what `Sent hardware` reports (tc counts no L2 header). */
  packets: number;
  bytes: number;
  /**
   * Packets of every tc datapath flow through the rule's flows, traps included:
   * OVS adds tc's counters (no L2 header) to the OpenFlow flows' (full frames).
   */
  tcPackets: number;
}

export class DatapathLedger {
  /** ufid -> the OpenFlow flows behind it; a datapath flow's key never changes while its ufid lives. */
  private readonly traced = new Map<string, TraceStep[]>();

  constructor(
    private readonly ctl: UnixctlClient,
    private readonly log?: Logger,
  ) {}

  /** The datapath flows now, each with the OpenFlow flows behind it (new ufids are traced once). */
  async read(): Promise<TracedFlow[]> {
    const flows = parseDpctlFlows(await this.ctl.call('dpctl/dump-flows', '-m'));
    const live = new Set<string>();
    const out: TracedFlow[] = [];
    for (const f of flows) {
      let steps: TraceStep[] = [];
      if (f.ufid) {
        live.add(f.ufid);
        const known = this.traced.get(f.ufid);
        if (known) steps = known;
        else {
          steps = await this.trace(f);
          this.traced.set(f.ufid, steps);
        }
      }
      out.push({ ...f, steps });
    }
    for (const u of this.traced.keys()) if (!live.has(u)) this.traced.delete(u);
    return out;
  }

  private async trace(f: DatapathFlow): Promise<TraceStep[]> {
    try {
      return parseTraceSteps(await this.ctl.call('ofproto/trace', f.match));
    } catch (e) {
      // A flow whose recirculation context is gone cannot be traced; it is left unattributed.
      this.log?.debug({ ufid: f.ufid, cause: (e as Error).message }, 'datapath flow not traceable');
      return [];
    }
  }
}

/**
 * Per rule id of `bridge`: the datapath flows that went through its flows.
 * Trap flows count as software whatever the datapath did: the rule itself runs
 * in the guest. A flow through several rules (pipe, goto) counts for each.
 */
export function hardwareByRule(flows: readonly TracedFlow[], bridge: string): Map<number, RuleHardware> {
  const out = new Map<number, RuleHardware>();
  for (const f of flows) {
    const rules = new Map<number, boolean>();
    for (const s of f.steps) {
      if (s.bridge !== bridge) continue;
      const kind = cookieKind(s.cookie);
      if (kind !== FlowKind.RULE && kind !== FlowKind.TRAP) continue;
      const id = cookieRuleId(s.cookie);
      rules.set(id, (rules.get(id) ?? true) && kind === FlowKind.RULE);
    }
    for (const [id, ruleFlow] of rules) {
      const hw = out.get(id) ?? { tcFlows: 0, softwareFlows: 0, packets: 0, bytes: 0, tcPackets: 0 };
      if (f.dp === 'tc') hw.tcPackets += f.packets;
      if (ruleFlow && f.dp === 'tc') {
        hw.tcFlows++;
        hw.packets += f.packets;
        hw.bytes += f.bytes;
      } else hw.softwareFlows++;
      out.set(id, hw);
    }
  }
  return out;
}

/** Datapath flows that recirculate and stayed in software: what a kernel without tc recirculation sharing costs. */
export function recirculatingInSoftware(flows: readonly DatapathFlow[]): number {
  return flows.filter((f) => f.dp !== 'tc' && (/\brecirc\(/.test(f.actions) || /\bct\(/.test(f.actions))).length;
}
