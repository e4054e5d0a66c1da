#!/usr/bin/env node
// vpfctl: the operator's CLI. Each subcommand lives in agent/ctl/<name>.ts and
// exports `run(args): Promise<number>` (the exit code); this file only dispatches.
const commands: Record<string, () => Promise<{ run(args: string[]): Promise<number>; usage: string }>> = {
  rule: () => import('../agent/ctl/rule.js'),
  translate: () => import('../agent/ctl/translate.js'),
  vm: () => import('../agent/ctl/vm.js'),
  explain: () => import('../agent/ctl/explain.js'),
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
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
