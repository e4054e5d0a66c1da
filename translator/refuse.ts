// Why a rule is not offloaded, as a VpfError without a stack: the translator
// refuses thousands of rules per second as a normal outcome (the reason goes
// to the guest and to `vpfctl vm offload`), and capturing a stack trace for
// each was a twentieth of translation time. Bugs still throw ordinary errors.
import { Errno, VpfError } from '../rules/errors.js';

export function refusal(errno: number, message: string, attr?: string): VpfError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new VpfError(errno, message, attr);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Throws EOPNOTSUPP with the reason, as a NIC driver's extack would say it. */
export const refuse = (message: string, attr?: string): never => {
  throw refusal(Errno.EOPNOTSUPP, message, attr);
};
