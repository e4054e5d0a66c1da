// vpfctl vf VM N ... | vf VM show [-s]: the legacy-eswitch half of `ip link`,
// run as the guest's own ip against the VM's route channel: `ip link set dev pf
// vf N ...` and `ip [-s] link show dev pf` (the PF answers to `pf` as an
// alternative name, docs/protocol.md). What vpfctl prints is what ip prints.
import { runCommand, takeStateDir, UsageError } from './common.js';
import { runGuestTool } from './guest.js';

export const usage =
  'vf VM N [mac X] [vlan V [qos Q] [proto 802.1Q|802.1ad]] [rate R] [max_tx_rate M] [min_tx_rate M] [spoofchk on|off] [trust on|off] [state auto|enable|disable] [query_rss on|off] | vf VM show [-s]';

/** The PF's name on the route channel, as the guest's ip addresses it. */
export const PF_NAME = 'pf';

/** The ip command line for `vf VM ARGS` (ARGS after the VM name). */
export function ipArgs(args: string[]): string[] {
  // `show -s` or, as ip takes it, `-s show`.
  const showAt = args[0] === '-s' ? 1 : 0;
  if (args[showAt] === 'show' || args[showAt] === 'list') {
    const rest = [...args.slice(0, showAt), ...args.slice(showAt + 1)];
    const extra = rest.filter((a) => a !== '-s');
    if (extra.length) throw new UsageError(`show takes only -s, not "${extra[0]}"`);
    return [...rest, 'link', 'show', 'dev', PF_NAME];
  }
  return ['link', 'set', 'dev', PF_NAME, 'vf', ...args];
}

export function run(argv: string[]): Promise<number> {
  return runCommand('vf', async () => {
    const args = [...argv];
    const stateDir = takeStateDir(args);
    const vm = args.shift();
    if (!vm || !args.length) throw new UsageError(`usage: vpfctl ${usage}`);
    return runGuestTool(stateDir, vm, 'ip', ipArgs(args));
  });
}
