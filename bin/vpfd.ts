#!/usr/bin/env node
// vpfd: the per-hypervisor daemon (agent/daemon.ts). Flags and config: docs/operations.md.
import { commandOf, configFromArgs, ConfigError, packageVersion, usage } from '../agent/config.js';
import { Vpfd } from '../agent/daemon.js';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const cmd = commandOf(argv);
  if (cmd === 'help') return void process.stdout.write(usage());
  if (cmd === 'version') return void process.stdout.write(`vpfd (vpf) ${packageVersion()}\n`);
  let config;
  try {
    config = configFromArgs(argv);
  } catch (e) {
    process.stderr.write(`vpfd: ${(e as Error).message}\n`);
    if (e instanceof ConfigError) process.stderr.write('Try vpfd --help.\n');
    process.exit(e instanceof ConfigError ? 2 : 1);
  }
  const d = await Vpfd.start(config);
  const stop = () => void d.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`vpfd: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
