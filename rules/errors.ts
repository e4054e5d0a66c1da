// Typed errors for everything a guest can get wrong. A refusal carries the errno
// the kernel would return and an extack-style message (NLMSGERR_ATTR_MSG), so the
// daemon can answer the guest exactly as a real NIC driver would.

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  E2BIG: 7,
  ENOMEM: 12,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  ERANGE: 34,
  EBADMSG: 74,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
} as const;

export type ErrnoName = keyof typeof Errno;

export class VpfError extends Error {
  /** Positive errno (the netlink reply carries it negated). */
  readonly errno: number;
  /** The attribute or token the message is about, when there is one. */
  readonly attr: string | undefined;

  constructor(errno: number, message: string, attr?: string) {
    super(message);
    this.name = 'VpfError';
    this.errno = errno;
    this.attr = attr;
  }

  get errnoName(): string {
    for (const [k, v] of Object.entries(Errno)) if (v === this.errno) return k;
    return `errno ${this.errno}`;
  }
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: VpfError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(errno: number, message: string, attr?: string): Result<T> => ({
  ok: false,
  error: new VpfError(errno, message, attr),
});

/** Run `f`, turning a thrown VpfError (or any bug) into a Result: decoders never throw at their boundary. */
export function attempt<T>(f: () => T): Result<T> {
  try {
    return ok(f());
  } catch (e) {
    if (e instanceof VpfError) return { ok: false, error: e };
    return fail(Errno.EINVAL, `internal error: ${(e as Error)?.message ?? String(e)}`);
  }
}

export function refuse(errno: number, message: string, attr?: string): never {
  throw new VpfError(errno, message, attr);
}
