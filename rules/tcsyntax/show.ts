// What `tc [-s] filter show dev X ingress` prints for a flower filter
// (iproute2 6.x tc/f_flower.c flower_print_opt and m_*.c print_* functions),
// close enough that an operator reads it like the real thing.
import type { FilterStats, FlowerRule } from '../model.js';
import { printAction } from './actions.js';
import { printKeys } from './keys.js';
import { ethProtoName } from './lex.js';

export function formatFilterShow(rule: FlowerRule, stats?: FilterStats, showStats = false): string {
  const lines: string[] = [];
  const head = `filter protocol ${ethProtoName(rule.protocol)} pref ${rule.prio} flower chain ${rule.chain}`;
  lines.push(head);
  lines.push(`${head} handle 0x${rule.handle.toString(16)}`);
  const keys = printKeys(rule.match);
  for (let i = 0; i < keys.length; i += 2) lines.push(`  ${keys[i]} ${keys[i + 1]}`);
  if (rule.match.ethType !== undefined) lines.splice(2, 0, `  eth_type ${ethProtoName(rule.match.ethType)}`);
  if (rule.flags.skipSw) lines.push('  skip_sw');
  if (rule.flags.skipHw) lines.push('  skip_hw');
  if (stats) lines.push(stats.inHw ? `  in_hw in_hw_count ${stats.inHwCount}` : '  not_in_hw');
  rule.actions.forEach((a, i) => {
    lines.push(`\taction order ${i + 1}: ${printAction(a).join(' ')} ${a.control.kind === 'goto' ? `goto chain ${a.control.chain}` : a.control.kind}`);
    lines.push(`\t index ${a.index ?? i + 1} ref 1 bind 1${stats ? ` installed ${Math.floor(stats.installedMs / 1000)} sec used ${Math.floor(stats.lastUsedMs / 1000)} sec` : ''}`);
    if (showStats && stats) {
      lines.push(`\tAction statistics:`);
      lines.push(`\tSent ${stats.bytes} bytes ${stats.packets} pkt (dropped ${stats.drops}, overlimits 0 requeues 0) `);
      if (stats.inHw) lines.push(`\tSent hardware ${stats.bytes} bytes ${stats.packets} pkt`);
      lines.push(`\tbacklog 0b 0p requeues 0`);
    }
    lines.push('');
  });
  return lines.join('\n');
}
