// The tc command-line codec for flower filters: parseFilter reads the words
// after `tc filter add|replace|change|del|get|show`, printFilter writes the
// canonical words back. parseFilter(printFilter(r)) deep-equals r.
import { attempt, Errno, VpfError, type Result } from '../errors.js';
import type { Action, FlowerMatch, FlowerRule } from '../model.js';
import { EthP } from '../model.js';
import { validateRule } from '../validate.js';
import { parseAction, printAction } from './actions.js';
import { parseKey, printKeys } from './keys.js';
import { bad, ethProto, ethProtoName, Tokens, uint } from './lex.js';
import { TC_COOKIE_MAX_SIZE } from '../netlink/actions.js';

export interface ParseOptions {
  /** Skip the kernel's semantic checks (for DEL/GET selectors that name only dev/prio). */
  selectorOnly?: boolean;
}

function parseFlower(t: Tokens, rule: FlowerRule): void {
  // f_flower.c: the filter's protocol doubles as the ethertype key unless it is "all"; keys such as ip_proto check it.
  const match: FlowerMatch = rule.protocol !== EthP.ALL ? { ethType: rule.protocol } : {};
  const actions: Action[] = [];
  while (!t.done) {
    const w = t.take()!;
    if (w === 'skip_sw') rule.flags.skipSw = true;
    else if (w === 'skip_hw') rule.flags.skipHw = true;
    else if (w === 'verbose') rule.flags.verbose = true;
    else if (w === 'action') {
      // m_action.c parse_action: from here on every word belongs to the action list; `action` between actions is optional.
      // (flower takes `action` only: real tc 6.1 answers `What is "actions"?`.)
      // m_action.c parse_action: `cookie HEX` after an action's own words; iproute2 keeps it for every
      // later action of the list too (act_ck_len is never reset), and so does this parser.
      let cookie: string | undefined;
      while (!t.done) {
        const a = parseAction(t);
        if (t.accept('cookie')) cookie = parseCookie(t.next('cookie'));
        actions.push(cookie !== undefined ? { ...a, cookie } : a);
        t.accept('action');
      }
    } else if (!parseKey(t, w, match)) bad(`flower: unknown key "${w}"`, w);
  }
  rule.match = match;
  rule.actions = actions;
}

/** m_action.c: a cookie is an even-length hex string of at most 16 bytes. */
function parseCookie(w: string): string {
  if (w.length > TC_COOKIE_MAX_SIZE * 2) bad(`cookie: ${w.length} Max allowed size ${TC_COOKIE_MAX_SIZE * 2}`, 'cookie');
  if (w.length % 2 || !/^[0-9a-fA-F]*$/.test(w)) bad('cookie must be a hex string', 'cookie');
  return w.toLowerCase();
}

function parseArgs(args: string[], opts: ParseOptions): FlowerRule {
  const t = new Tokens(args);
  const rule: FlowerRule = {
    dev: '',
    direction: 'ingress',
    chain: 0,
    prio: 0,
    handle: 0,
    protocol: EthP.ALL,
    flags: { skipSw: false, skipHw: false, verbose: false },
    match: {},
    actions: [],
  };
  let sawKind = false;
  while (!t.done) {
    const w = t.take()!;
    if (w === 'dev') rule.dev = t.next('dev');
    else if (w === 'ingress') rule.direction = 'ingress';
    else if (w === 'egress') rule.direction = 'egress';
    else if (w === 'parent') {
      const p = t.next('parent');
      if (p === 'ffff:fff2' || p === 'ffff:' || p === 'ffff:0') rule.direction = 'ingress';
      else if (p === 'ffff:fff3') rule.direction = 'egress';
      else throw new VpfError(Errno.EOPNOTSUPP, `parent ${p}: only clsact ingress/egress hold offloadable filters`, 'parent');
    } else if (w === 'block') throw new VpfError(Errno.EOPNOTSUPP, 'shared blocks are not supported by vpf', 'block');
    else if (w === 'prio' || w === 'pref' || w === 'priority') rule.prio = uint(t.next(w), 'prio', 0xffff);
    else if (w === 'protocol' || w === 'proto') rule.protocol = ethProto(t.next(w), 'protocol');
    else if (w === 'chain') rule.chain = uint(t.next(w), 'chain', 0x0fffffff);
    else if (w === 'handle') rule.handle = uint(t.next(w), 'handle');
    else if (w === 'flower') {
      sawKind = true;
      parseFlower(t, rule);
    } else if (['u32', 'matchall', 'bpf', 'basic', 'fw', 'route', 'cgroup', 'flow', 'bpf'].includes(w)) {
      throw new VpfError(Errno.EOPNOTSUPP, `classifier "${w}" cannot be offloaded; only flower`, w);
    } else bad(`unknown argument "${w}"`, w);
  }
  if (!rule.dev) bad('"dev" is required', 'dev');
  if (!sawKind && !opts.selectorOnly) bad('"flower" is required', 'flower');
  if (!opts.selectorOnly) {
    const err = validateRule(rule);
    if (err) throw err;
  }
  return rule;
}

/** Parses `dev vf0 ingress prio 1 protocol ip flower ... action ...`. Never throws. */
export function parseFilter(args: string[], opts: ParseOptions = {}): Result<FlowerRule> {
  return attempt(() => parseArgs(args, opts));
}

/** Splits a command line the way a shell would for simple (unquoted) tc arguments. */
export function splitArgs(line: string): string[] {
  return line.trim().split(/\s+/).filter(Boolean);
}

/** Canonical arguments for a rule (what goes after `tc filter add`). */
export function printFilter(rule: FlowerRule): string[] {
  const o = ['dev', rule.dev, rule.direction];
  if (rule.chain) o.push('chain', String(rule.chain));
  if (rule.prio) o.push('prio', String(rule.prio));
  if (rule.handle) o.push('handle', `0x${rule.handle.toString(16)}`);
  o.push('protocol', ethProtoName(rule.protocol), 'flower');
  if (rule.flags.skipSw) o.push('skip_sw');
  if (rule.flags.skipHw) o.push('skip_hw');
  if (rule.flags.verbose) o.push('verbose');
  const implied = rule.protocol === EthP.ALL ? undefined : rule.protocol;
  if (rule.match.ethType !== implied) {
    throw new VpfError(Errno.EINVAL, `eth_type 0x${(rule.match.ethType ?? 0).toString(16)} differs from protocol ${ethProtoName(rule.protocol)}: no tc syntax says that`);
  }
  const { ethType: _e, ...keys } = rule.match;
  void _e;
  o.push(...printKeys(keys));
  let cookie: string | undefined;
  for (const a of rule.actions) {
    // tc gives every action after a cookie that cookie too (parseFlower): a later action without one has no syntax.
    if (cookie !== undefined && a.cookie === undefined) throw new VpfError(Errno.EOPNOTSUPP, 'an action without a cookie after one with a cookie has no tc syntax (tc gives it the cookie too)', 'cookie');
    o.push('action', ...printAction(a), ...(a.cookie !== undefined && a.cookie !== cookie ? ['cookie', a.cookie] : []));
    cookie = a.cookie;
  }
  return o;
}

