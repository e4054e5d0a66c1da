// vpfctl guest VM -- tc|ip|devlink ARGS...: runs the real iproute2 binary as
// the guest would, against the VM's channels. dist/nlshim.so (built from
// agent/guest/nlshim.c by scripts/deps.sh) is LD_PRELOADed so that the tool's
// NETLINK_ROUTE and NETLINK_GENERIC sockets are the VM's channel sockets:
// what it prints is what the guest's own tool prints.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { genlChannelSocket, runCommand, takeStateDir, UsageError, vmChannelSocket } from './common.js';

export const usage = 'guest VM -- tc|ip|devlink ARGS...       # the real tool, as the guest runs it';

export const GUEST_TOOLS = ['tc', 'ip', 'devlink'] as const;
export type GuestTool = (typeof GUEST_TOOLS)[number];

/** dist/nlshim.so, found from this module (dist/agent/ctl/ or agent/ctl/ under vite-node). */
export function shimPath(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  for (const p of [join(root, 'nlshim.so'), join(root, 'dist', 'nlshim.so')]) if (existsSync(p)) return p;
  throw new Error(`nlshim.so not found next to ${root}: run scripts/deps.sh (it builds agent/guest/nlshim.c)`);
}

/** The environment that points a tool's netlink sockets at VM `vm`'s channels. */
export function guestEnv(stateDir: string, vm: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const preload = [shimPath(), base.LD_PRELOAD].filter(Boolean).join(':');
  return { ...base, LD_PRELOAD: preload, VPF_NL_ROUTE: vmChannelSocket(stateDir, vm), VPF_NL_GENL: genlChannelSocket(stateDir, vm) };
}

/** Splits `VM -- TOOL ARGS...` (the `--` is optional). */
export function parseGuestArgs(args: string[]): { vm: string; tool: GuestTool; toolArgs: string[] } {
  const [vm, ...rest] = args;
  if (!vm || vm.startsWith('-')) throw new UsageError(`usage: vpfctl ${usage}`);
  if (rest[0] === '--') rest.shift();
  const [tool, ...toolArgs] = rest;
  if (!GUEST_TOOLS.includes(tool as GuestTool)) throw new UsageError(`guest runs ${GUEST_TOOLS.join(', ')}, not '${tool ?? ''}'`);
  return { vm, tool: tool as GuestTool, toolArgs };
}

/** Runs TOOL with ARGS against the VM's channels, its stdio the caller's; resolves to its exit code. */
export function runGuestTool(stateDir: string, vm: string, tool: GuestTool, toolArgs: string[]): Promise<number> {
  const path = vmChannelSocket(stateDir, vm);
  if (!existsSync(path)) throw new Error(`no channel for VM ${vm} (${path}): is vpfd running and the VM added?`);
  return new Promise((resolve, reject) => {
    const child = spawn(tool, toolArgs, { stdio: 'inherit', env: guestEnv(stateDir, vm) });
    child.on('error', (e) => reject(new Error(`${tool}: ${e.message} (iproute2 installed?)`)));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

export function run(argv: string[]): Promise<number> {
  return runCommand('guest', async () => {
    const args = [...argv];
    const stateDir = takeStateDir(args);
    const { vm, tool, toolArgs } = parseGuestArgs(args);
    return runGuestTool(stateDir, vm, tool, toolArgs);
  });
}
