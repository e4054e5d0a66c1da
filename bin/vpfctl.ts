#!/usr/bin/env node
// vpfctl: the operator's CLI. Each subcommand lives in agent/ctl/<name>.ts and
// exports `run(args): Promise<number>` (the exit code) and its `usage`; this
// file only dispatches, and answers --help and --version for every command
// (before a `--`, after which the words belong to the tool being run).
import { packageVersion } from '../agent/config.js';

type Command = { run(args: string[]): Promise<number>; usage: string };
const commands: Record<string, () => Promise<Command>> = {
  rule: () => import('../agent/ctl/rule.js'),
  translate: () => import('../agent/ctl/translate.js'),
  vm: () => import('../agent/ctl/vm.js'),
  explain: () => import('../agent/ctl/explain.js'),
  guest: () => import('../agent/ctl/guest.js'),
  tc: () => import('../agent/ctl/tc.js'),
  vf: () => import('../agent/ctl/vf.js'),
  eswitch: () => import('../agent/ctl/eswitch.js'),
};


async function usageText(): Promise<string> {
  const lines = await Promise.all(Object.values(commands).map(async (l) => (await l()).usage));
  return `usage: vpfctl [--state-dir DIR] COMMAND ...\n${lines.map((l) => '  vpfctl ' + l).join('\n')}\n`;
}

/** The words vpfctl itself reads: those before a `--`. */
const own = (args: string[]) => (args.includes('--') ? args.slice(0, args.indexOf('--')) : args);

async function main(argv: string[]): Promise<number> {
  // Global options may come before the command (`vpfctl --state-dir D tc ...`); commands read them from their args.
  const globals: string[] = [];
  while (argv[0] === '--state-dir') globals.push(...argv.splice(0, 2));
  const [name, ...rest] = argv;
  const load = name ? commands[name] : undefined;
  if (own(argv).includes('--version')) {
    process.stdout.write(`vpfctl (vpf) ${packageVersion()}\n`);
    return 0;
  }
  if (!load) {
    const help = name === '--help' || name === '-h' || name === 'help';
    (help ? process.stdout : process.stderr).write(await usageText());
    return help ? 0 : 2;
  }
  const cmd = await load();
  if (own(rest).includes('--help')) {
    process.stdout.write(`usage: vpfctl ${cmd.usage}\n`);
    return 0;
  }
  rest.push(...globals);
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`vpfctl: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
