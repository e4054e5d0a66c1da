import { describe, expect, it } from 'vitest';
import { cookieOf, FlowKind } from '../../translator/cookie.js';
import { explainCookie, explainFlowLine } from '../../translator/explain.js';

describe('explain', () => {
  it('a cookie gives back its kind and rule id', () => {
    const c = cookieOf(FlowKind.TRAP, 4242, 3, 100, [{ field: 'in_port', value: 1 }], [{ a: 'output', port: 2 }]);
    expect(explainCookie(c)).toMatchObject({ kind: 'trap', ruleId: 4242 });
  });
  it('a dump-flows line gives back its rule, a line without cookie nothing', () => {
    const c = cookieOf(FlowKind.RULE, 7, 1, 10, [{ field: 'eth_type', value: 0x800 }], []);
    expect(explainFlowLine(` cookie=0x${c.toString(16)}, duration=1s, table=1, priority=10,ip actions=drop`)).toMatchObject({ kind: 'rule', ruleId: 7 });
    expect(explainFlowLine('table=0, priority=0 actions=drop')).toBeUndefined();
  });
});
