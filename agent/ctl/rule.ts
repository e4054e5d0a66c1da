// vpfctl rule parse|encode|decode: the rule codecs, offline. `decode` reads the
// hex of an RTM_NEWTFILTER (e.g. captured from a real tc) and prints it as tc
// syntax and JSON; --devs maps names to the ifindexes of the host it came from.
import { parseDevMap, type DevMap } from '../../rules/ports.js';
import { decodeTcMessage, encodeFilterRequest } from '../../rules/netlink/tc.js';
import { parseFilter, printFilter } from '../../rules/tcsyntax/index.js';
import { out, runCommand, UsageError } from './common.js';

export const usage = 'rule parse -- ARGS | rule encode -- ARGS | rule decode [--devs name=ifindex,...] HEX';

class RuleError extends UsageError {}

function argsAfterDashes(args: string[]): string[] {
  const i = args.indexOf('--');
  return i >= 0 ? args.slice(i + 1) : args;
}

function parseOrFail(args: string[]) {
  const r = parseFilter(argsAfterDashes(args));
  if (!r.ok) throw new RuleError(`${r.error.message} (${r.error.errnoName})`);
  return r.value;
}

export function run(argv: string[]): Promise<number> {
  return runCommand('rule', async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'parse':
        out(JSON.stringify(parseOrFail(rest), null, 2));
        return 0;
      case 'encode':
        out(encodeFilterRequest(parseOrFail(rest)).toString('hex'));
        return 0;
      case 'decode': {
        let devs: DevMap | undefined;
        const args = [...rest];
        const d = args.indexOf('--devs');
        if (d >= 0) {
          try {
            devs = parseDevMap(args[d + 1] ?? '');
          } catch (e) {
            throw new RuleError((e as Error).message);
          }
          args.splice(d, 2);
        }
        const hex = args.join('').replace(/\s+/g, '');
        if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new RuleError('decode needs the message as hex');
        const r = decodeTcMessage(Buffer.from(hex, 'hex'), devs ? { devs } : {});
        if (!r.ok) throw new RuleError(`${r.error.message} (${r.error.errnoName})`);
        const m = r.value;
        if (m.type !== 'filter' || m.op !== 'new') throw new RuleError(`a ${m.type} ${m.op} message, not a new filter`);
        out(`tc filter add ${printFilter(m.rule).join(' ')}`);
        out(JSON.stringify(m.rule, null, 2));
        return 0;
      }
      default:
        throw new UsageError(`usage: vpfctl ${usage}`);
    }
  });
}
