// A VM's record as vpfd keeps it (agent/records.ts), fresh: two VFs on the
// default port map, no rules yet. For tests of the journal and the VM's parts.
import type { VmRecord } from '../../agent/records.js';
import { defaultPortMap } from '../../translator/portmap.js';

export const vmRecord = (name: string): VmRecord => ({ name, vfs: 2, ports: defaultPortMap(2), attach: {}, rules: [], nextRuleId: 1, zoneBase: 256, layout: [] });
