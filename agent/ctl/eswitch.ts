// vpfctl eswitch VM mode legacy|switchdev ... | eswitch VM show: the guest's own
// `devlink dev eswitch set|show` against the VM's generic netlink channel.
// vpfd answers for any devlink handle (it cannot know the guest's PCI address)
// and `devlink dev show` lists this one.
import { runCommand, takeStateDir, UsageError } from './common.js';
import { runGuestTool } from './guest.js';

export const usage = 'eswitch VM mode legacy|switchdev [inline-mode none|link|network|transport] [encap-mode none|basic] | eswitch VM show';

/** The devlink handle vpfd reports for the virtual PF. */
export const PF_HANDLE = 'pci/0000:00:00.0';

/** The devlink command line for `eswitch VM ARGS` (ARGS after the VM name). */
export function devlinkArgs(args: string[]): string[] {
  if (args.length === 1 && args[0] === 'show') return ['dev', 'eswitch', 'show', PF_HANDLE];
  if (args[0] === 'mode' || args[0] === 'inline-mode' || args[0] === 'encap-mode') return ['dev', 'eswitch', 'set', PF_HANDLE, ...args];
  throw new UsageError(`usage: vpfctl ${usage}`);
}

export function run(argv: string[]): Promise<number> {
  return runCommand('eswitch', async () => {
    const args = [...argv];
    const stateDir = takeStateDir(args);
    const vm = args.shift();
    if (!vm) throw new UsageError(`usage: vpfctl ${usage}`);
    return runGuestTool(stateDir, vm, 'devlink', devlinkArgs(args));
  });
}
