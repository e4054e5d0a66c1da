// What every vpfctl subcommand shares: where the daemon lives, and how a usage
// error looks (exit code 2 and one line, like tc and ip).

export const EXIT_USAGE = 2;

export class UsageError extends Error {}

/** `--state-dir DIR` anywhere in args (removed from them), else $VPF_STATE_DIR, else /var/lib/vpf. */
export function takeStateDir(args: string[]): string {
  const i = args.indexOf('--state-dir');
  if (i >= 0) {
    const dir = args[i + 1];
    if (!dir) throw new UsageError('--state-dir needs a directory');
    args.splice(i, 2);
    return dir;
  }
  return process.env.VPF_STATE_DIR ?? '/var/lib/vpf';
}

export { adminSocket, genlChannelSocket, vmChannelSocket } from '../paths.js';

/** Runs a subcommand body, mapping UsageError to exit 2 and other errors to exit 1, one line each. */
export async function runCommand(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`vpfctl ${name}: ${err.message}\n`);
    return e instanceof UsageError ? EXIT_USAGE : 1;
  }
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}
