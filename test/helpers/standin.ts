// A stand-in for a VM's bridge, to test the VM's parts without OVS
// (docs/architecture.md): a FlowInstaller that holds flows by cookie, records
// each diff it applies and each dump read, and can hold a bundle back (a busy
// ovs-vswitchd) or refuse the next one (a bundle OVS rejects).
import type { FlowInstaller } from '../../ovs/ctl/ofctl.js';
import type { FlowDiff } from '../../ovs/openflow/diff.js';

export interface StandInBridge {
  readonly inst: FlowInstaller;
  /** Every diff applied, in order. */
  readonly applied: FlowDiff[];
  /** Dumps read so far. */
  dumps(): number;
  /** When set, the next apply throws as a refused bundle does (and clears it). */
  failNext: boolean;
  /** Applies wait from now until open(). */
  hold(): void;
  open(): void;
}

export function standInBridge(): StandInBridge {
  // Flows as sent (values, not ovs-ofctl's text) with zero counters: what is read back of a dump is the cookies.
  const held = new Map<bigint, unknown>();
  const applied: FlowDiff[] = [];
  let dumps = 0;
  let gate: Promise<void> | undefined;
  let release: (() => void) | undefined;
  const b: StandInBridge = {
    applied,
    dumps: () => dumps,
    failNext: false,
    hold() {
      gate = new Promise((r) => (release = r));
    },
    open() {
      gate = undefined;
      release?.();
    },
    inst: {
      dump: async () => {
        dumps++;
        return [...held.values()] as never;
      },
      apply: async (d) => {
        if (gate) await gate;
        if (b.failNext) {
          b.failNext = false;
          throw new Error('bundle refused');
        }
        applied.push(d);
        for (const c of d.del) held.delete(c);
        for (const f of d.add) held.set(f.cookie, { ...f, packets: 0, bytes: 0, idleAgeSec: 0, durationSec: 0 });
      },
      putMeters: async () => undefined,
      pruneMeters: async () => undefined,
      portStats: async () => new Map(),
    },
  };
  return b;
}
