#!/usr/bin/env node
// vpfd: the per-hypervisor daemon (agent/daemon.ts). Flags and config: docs/operations.md.
import { configFromArgs, ConfigError } from '../agent/config.js';
import { Vpfd } from '../agent/daemon.js';

async function main(): Promise<void> {
  let config;
  try {
    config = configFromArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`vpfd: ${(e as Error).message}\n`);
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
