// Semantic checks a flower filter must pass, as the kernel makes them
// (cls_flower.c fl_set_key / fl_validate_ct_state, act_api.c), shared by every
// decoder so a rule is judged the same whether it came as text or as netlink.
import type { FlowerRule } from './model.js';
import type { VpfError } from './errors.js';

/** undefined when the rule is one the kernel would accept; otherwise the errno and extack it would give. */
export function validateRule(_rule: FlowerRule): VpfError | undefined {
  return undefined; // filled in by the netlink/validation work (issue 2)
}
