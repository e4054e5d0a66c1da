// vpfctl tc VM TC-ARGS...: the guest's own tc (iproute2) run against the VM's
// route channel, so that what it sends and prints is exactly what the guest's
// tc sends and prints (`vpfctl guest VM -- tc ...`). The raw channel client is
// agent/ctl/channel.ts.
import { runCommand, takeStateDir, UsageError } from './common.js';
import { runGuestTool } from './guest.js';

export const usage = 'tc VM [-s] [-j] filter|chain|qdisc ...            # the real tc, e.g. tc VM -s filter show dev vf0 ingress';

export function run(argv: string[]): Promise<number> {
  return runCommand('tc', async () => {
    const args = [...argv];
    const stateDir = takeStateDir(args);
    const vm = args.shift();
    if (!vm || !args.length) throw new UsageError(`usage: vpfctl ${usage}`);
    return runGuestTool(stateDir, vm, 'tc', args);
  });
}
