#!/usr/bin/env node
// vpfctl: the operator's CLI. Each subcommand lives in agent/ctl/<name>.ts and
// exports `run(args): Promise<number>` (the exit code); this file only dispatches.
const commands: Record<string, () => Promise<{ run(args: string[]): Promise<number>; usage: string }>> = {
  rule: () => import('../agent/ctl/rule.js'),
  translate: () => import('../agent/ctl/translate.js'),
  vm: () => import('../agent/ctl/vm.js'),
  explain: () => import('../agent/ctl/explain.js'),
  tc: () => import('../agent/ctl/tc.js'),
  vf: () => import('../agent/ctl/vf.js'),
  eswitch: () => import('../agent/ctl/eswitch.js'),
};

async function main(argv: string[]): Promise<number> {
  // Global options may come before the command (`vpfctl --state-dir D tc ...`); commands read them from their args.
  const globals: string[] = [];
  while (argv[0] === '--state-dir') globals.push(...argv.splice(0, 2));
  const [name, ...rest] = argv;
  rest.push(...globals);
  const load = name ? commands[name] : undefined;
  if (!load) {
    const lines = await Promise.all(Object.values(commands).map(async (l) => (await l()).usage));
    process.stderr.write(`usage: vpfctl COMMAND ...\n${lines.map((l) => '  ' + l).join('\n')}\n`);
    return 2;
  }
  return (await load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`vpfctl: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
