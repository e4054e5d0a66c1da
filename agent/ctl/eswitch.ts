// vpfctl eswitch VM mode legacy|switchdev | eswitch VM show: `devlink dev
// eswitch set|show` for the VM's virtual PF. Like the devlink tool it resolves
// the "devlink" generic netlink family first (lib/mnl_utils.c family_get), then
// sends DEVLINK_CMD_ESWITCH_SET/GET, on the VM's generic netlink channel.
import {
  decodeDevlinkReply,
  encodeEswitchRequest,
  encodeFamilyRequest,
  ENCAP_MODES,
  ESWITCH_MODES,
  GENL_ID_CTRL,
  INLINE_MODES,
  type DevlinkHandle,
  type EswitchAttrs,
} from '../../rules/netlink/devlink.js';
import type { NlMessage } from '../../rules/netlink/nlmsg.js';
import { genlChannelSocket, out, runCommand, takeStateDir, UsageError } from './common.js';
import { asTool, converse, errorOf, extackLine, strerror, ToolError, type Conversation } from './vf.js';

export const usage = 'eswitch VM mode legacy|switchdev [inline-mode none|link|network|transport] [encap-mode none|basic] | eswitch VM show';


/** vpfd answers for any device name (it cannot know the guest's PCI address) and echoes it back. */
export const PF_HANDLE: DevlinkHandle = { bus: 'pci', dev: '0000:00:00.0' };

/** devlink exits EXIT_FAILURE when the kernel refuses (devlink.c main: dl_cmd() != 0). */
const EXIT_DEVLINK = 1;

const firstSeq = () => Math.floor(Date.now() / 1000) >>> 0;

/** _mnlg_socket_recv_run: mnlu_cb_error prints the extack, then devlink adds "devlink answers: <strerror>". */
function devlinkFailure(replies: NlMessage[]): ToolError | undefined {
  const e = errorOf(replies);
  if (!e || e.errno === 0) return undefined;
  const ext = extackLine(e);
  return new ToolError(`${ext ? `${ext}\n` : ''}devlink answers: ${strerror(e.errno)}`, EXIT_DEVLINK);
}

/** CTRL_CMD_GETFAMILY "devlink": the family id to address devlink messages to. */
async function resolveFamily(conv: Conversation, seq: number): Promise<number> {
  const replies = await conv.ask(encodeFamilyRequest({ seq }), (m) => m.type === GENL_ID_CTRL);
  const e = errorOf(replies);
  if (e && e.errno !== 0) {
    // devlink.c: mnlu_gen_socket_open failing is reported as this one line (after any extack).
    const ext = extackLine(e);
    throw new ToolError(`${ext ? `${ext}\n` : ''}Failed to connect to devlink Netlink`, EXIT_DEVLINK);
  }
  const msg = replies.find((m) => m.type === GENL_ID_CTRL);
  const fam = msg ? decodeDevlinkReply(msg) : undefined;
  if (!fam?.ok || fam.value.cmd !== 'family') throw new Error(`cannot read vpfd's family reply${fam && !fam.ok ? `: ${fam.error.message}` : ''}`);
  return fam.value.id;
}

/** devlink.c pr_out_eswitch (non-JSON): `pci/BDF: mode M inline-mode I encap-mode E`, each part only when reported. */
export function formatEswitch(h: DevlinkHandle, e: EswitchAttrs): string {
  let line = `${h.bus}/${h.dev}:`;
  if (e.mode !== undefined) line += ` mode ${e.mode}`;
  if (e.inlineMode !== undefined) line += ` inline-mode ${e.inlineMode}`;
  if (e.encapMode !== undefined) line += ` encap-mode ${e.encapMode}`;
  return line;
}

function oneOf<T extends string>(names: readonly T[], value: string | undefined, what: string): T {
  // devlink.c eswitch_mode_get & co: exact names, else "Unknown eswitch <what> \"<value>\"".
  if (value === undefined) throw new UsageError(`${what} needs a value`);
  const found = names.find((n) => n === value);
  if (!found) throw new UsageError(`Unknown eswitch ${what} "${value}"`);
  return found;
}

/** `[set] [mode M] [inline-mode I] [encap-mode E]`, at least one of them (devlink dl_argv_parse). */
export function parseEswitchSet(args: string[]): EswitchAttrs {
  const a = args[0] === 'set' ? args.slice(1) : args;
  const attrs: EswitchAttrs = {};
  for (let i = 0; i < a.length; i += 2) {
    const [key, value] = [a[i], a[i + 1]];
    if (key === 'mode') attrs.mode = oneOf(ESWITCH_MODES, value, 'mode');
    else if (key === 'inline-mode') attrs.inlineMode = oneOf(INLINE_MODES, value, 'inline mode');
    else if (key === 'encap-mode') attrs.encapMode = oneOf(ENCAP_MODES, value, 'encap mode');
    else throw new UsageError(`unknown option "${key}"; usage: vpfctl ${usage}`);
  }
  if (!Object.keys(attrs).length) throw new UsageError(`usage: vpfctl ${usage}`);
  return attrs;
}

async function show(conv: Conversation): Promise<number> {
  const seq = firstSeq();
  const family = await resolveFamily(conv, seq);
  const replies = await conv.ask(encodeEswitchRequest({ seq: seq + 1 }, { cmd: 'eswitch-get', ...PF_HANDLE }, family), (m) => m.type === family);
  const failure = devlinkFailure(replies);
  if (failure) throw failure;
  const msg = replies.find((m) => m.type === family);
  if (!msg) throw new Error('vpfd acknowledged the eswitch query without answering it');
  const r = decodeDevlinkReply(msg, family);
  if (!r.ok || r.value.cmd !== 'eswitch') throw new Error(`cannot read vpfd's eswitch reply${!r.ok ? `: ${r.error.message}` : ''}`);
  out(formatEswitch(r.value, r.value));
  return 0;
}

async function set(conv: Conversation, attrs: EswitchAttrs): Promise<number> {
  const seq = firstSeq();
  const family = await resolveFamily(conv, seq);
  const replies = await conv.ask(encodeEswitchRequest({ seq: seq + 1 }, { cmd: 'eswitch-set', ...PF_HANDLE, ...attrs }, family));
  const failure = devlinkFailure(replies);
  if (failure) throw failure;
  const ack = errorOf(replies);
  if (!ack) throw new Error('vpfd ended the answer without an ACK');
  const warning = extackLine(ack);
  if (warning) process.stderr.write(`${warning}\n`);
  return 0;
}

export function run(argv: string[]): Promise<number> {
  return runCommand('eswitch', async () => {
    const args = [...argv];
    const stateDir = takeStateDir(args);
    const vm = args.shift();
    if (!vm || !args.length) throw new UsageError(`usage: vpfctl ${usage}`);
    const path = genlChannelSocket(stateDir, vm);
    if (args[0] === 'show') {
      if (args.length > 1) throw new UsageError(`show takes no arguments, not "${args[1]}"`);
      return asTool(() => converse(path, show));
    }
    const attrs = parseEswitchSet(args);
    return asTool(() => converse(path, (conv) => set(conv, attrs)));
  });
}
