// Gotos that can come back round: a loop of chains on one representor.
//
// tc and OVS end a looping packet differently. The kernel drops it at its 17th
// goto or reclassify (cls_api.c __tcf_classify, max_reclassify_loop) after
// sending whatever each pass sent (mirror copies); OVS drops it at its resubmit
// limit with every action of the translation discarded, or, through
// ct(table=), after the datapath's few recirculations. So a rule whose goto
// lies on a loop is not offloaded: software runs the loop as the kernel does.
import { Errno, type VpfError } from '../rules/errors.js';
import type { Control, FlowerRule } from '../rules/model.js';
import type { RuleInput } from './index.js';
import { refusal } from './refuse.js';

/** Calls `f` with each chain the rule's actions may go to: `goto chain N` as any action's verdict, or as a police's exceed verdict. */
function eachGoto(rule: FlowerRule, f: (chain: number) => void): void {
  for (const a of rule.actions) {
    if (a.control.kind === 'goto') f(a.control.chain);
    if (a.kind === 'police' && a.exceed.kind === 'goto') f(a.exceed.chain);
    // tcf_action_exec (act_api.c) goes on only past a pipe or a jump: a goto after any other verdict is never taken.
    if (!goesOn(a.control) && !(a.kind === 'police' && goesOn(a.exceed))) break;
  }
}

const goesOn = (c: Control) => c.kind === 'pipe' || c.kind === 'jump';

/**
 * The rules with a goto on a loop, by id, with the reason: an edge chain -> target of their
 * representor's goto graph from which their own chain can be reached again.
 * Edges are deduplicated first, so the walk costs the distinct (chain, target)
 * pairs, not the rules (a guest OVS has thousands of rules going to a few chains).
 */
export function rulesOnLoops(rules: readonly RuleInput[]): Map<number, VpfError> {
  const edges = new Map<string, Map<number, Set<number>>>(); // dev -> chain -> targets
  for (const { rule } of rules) {
    eachGoto(rule, (t) => {
      const byChain = edges.get(rule.dev) ?? edges.set(rule.dev, new Map()).get(rule.dev)!;
      (byChain.get(rule.chain) ?? byChain.set(rule.chain, new Set()).get(rule.chain)!).add(t);
    });
  }
  const looping = new Map<string, Set<string>>(); // dev -> "chain>target" edges on a loop
  for (const [dev, byChain] of edges) {
    const reaches = (from: number, to: number): boolean => {
      const seen = new Set<number>([from]);
      const todo = [from];
      while (todo.length) {
        const c = todo.pop()!;
        if (c === to) return true;
        for (const n of byChain.get(c) ?? []) if (!seen.has(n)) seen.add(n), todo.push(n);
      }
      return false;
    };
    const on = new Set<string>();
    for (const [c, targets] of byChain) for (const t of targets) if (reaches(t, c)) on.add(`${c}>${t}`);
    if (on.size) looping.set(dev, on);
  }
  const out = new Map<number, VpfError>();
  if (!looping.size) return out;
  for (const { id, rule } of rules) {
    const on = looping.get(rule.dev);
    let back: number | undefined;
    if (on) eachGoto(rule, (t) => void (back ??= on.has(`${rule.chain}>${t}`) ? t : undefined));
    if (back === undefined) continue;
    const why = `goto chain ${back} closes a loop of chains: the kernel drops a looping packet at its 17th goto after sending what each pass sent, OVS at its resubmit or recirculation limit with nothing sent`;
    out.set(id, refusal(Errno.EOPNOTSUPP, why, 'goto'));
  }
  return out;
}
