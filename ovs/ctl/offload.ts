// Which datapath flows the NIC holds. OVS offloads datapath flows created by
// traffic (upcalls), not OpenFlow rules, so "is this rule in hardware" is only
// known from `ovs-appctl dpctl/dump-flows -m type=offloaded` once packets flowed.

export interface DatapathFlow {
  /** The flow's id (dpctl -m prints it): stable while the flow lives. */
  ufid?: string;
  /** Key and mask as dpctl prints them; ofproto/trace takes this text as it is. */
  match: string;
  packets: number;
  bytes: number;
  offloaded: boolean;
  /** 'tc', 'dpdk', 'ovs' ... as OVS reports it (dp:). */
  dp: string;
  actions: string;
}

/** Parses dpctl/dump-flows -m lines: `ufid:...,<match>, packets:N, bytes:N, used:..., offloaded:yes, dp:tc, actions:...`. */
export function parseDpctlFlows(text: string): DatapathFlow[] {
  const out: DatapathFlow[] = [];
  for (const line of text.split('\n')) {
    const m = /^(.*?), packets:(\d+), bytes:(\d+),.*?actions:(.*)$/.exec(line.trim());
    if (!m) continue;
    const off = /\boffloaded:(\w+)/.exec(line)?.[1];
    const ufid = /^ufid:([0-9a-f-]+)/.exec(m[1]!)?.[1];
    out.push({
      ...(ufid ? { ufid } : {}),
      match: m[1]!.replace(/^ufid:[0-9a-f-]+,\s*/, ''),
      packets: Number(m[2]),
      bytes: Number(m[3]),
      // OVS 3.1 prints no offloaded: for tc flows, only dp:tc.
      offloaded: off === 'yes' || off === 'partial' || /\bdp:tc\b/.test(line),
      dp: /\bdp:(\w+)/.exec(line)?.[1] ?? 'ovs',
      actions: m[4]!,
    });
  }
  return out;
}

/** One OpenFlow flow a datapath flow's packets went through, as ofproto/trace names it. */
export interface TraceStep {
  bridge: string;
  table: number;
  cookie: bigint;
}

/**
 * The OpenFlow flows behind a datapath flow: `ofproto/trace` of its key, read
 * off the `bridge("NAME")` headers and the ` T. match, priority P, cookie C`
 * lines (ofproto-dpif-trace.c). The megaflow's wildcarded fields do not change
 * which flows match (that is how the megaflow was made), so any value does.
 * Only the first pass: the trace follows a recirculation on into the next
 * recirc_id's flows, which are another datapath flow with its own counters.
 */
export function parseTraceSteps(text: string): TraceStep[] {
  const out: TraceStep[] = [];
  let bridge = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('Datapath actions:')) break;
    const b = /^\s*bridge\("([^"]+)"\)/.exec(line);
    if (b) {
      bridge = b[1]!;
      continue;
    }
    const t = /^\s*(\d+)\. .*, cookie (0x[0-9a-f]+)\s*$/.exec(line);
    if (t && bridge) out.push({ bridge, table: Number(t[1]), cookie: BigInt(t[2]!) });
  }
  return out;
}
