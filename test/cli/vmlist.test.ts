// vpfctl vm list: an operator sees at a glance which VM failed to come up and why.
import { describe, expect, it } from 'vitest';
import { formatVmList } from '../../agent/ctl/vm.js';
import { defaultPortMap } from '../../translator/portmap.js';

describe('vpfctl vm list', () => {
  it('shows each VM state, with the cause of a failed one', () => {
    const base = { vfs: 2, ports: defaultPortMap(2), rules: 0, flows: 0, mode: 'switchdev' as const };
    const text = formatVmList([
      { ...base, name: 'a', bridge: 'vpf-a', channel: '/s/a.sock', rules: 3, flows: 12, state: 'up' },
      { ...base, name: 'b', bridge: 'vpf-b', channel: '/s/b.sock', state: 'failed', error: 'ovsdb: constraint violation' },
    ]).split('\n');
    expect(text[0]).toMatch(/^VM\s+STATE\s+BRIDGE\s+VFS\s+MODE\s+RULES\s+FLOWS\s+CHANNEL$/);
    expect(text[1]).toMatch(/^a\s+up\s+vpf-a\s+2\s+switchdev\s+3\s+12\s+\/s\/a\.sock$/);
    expect(text[2]).toMatch(/^b\s+failed: ovsdb: constraint violation\s+vpf-b\s/);
  });
});
