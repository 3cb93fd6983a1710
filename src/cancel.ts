/**
 * Cancellation helpers shared by the lock primitives.
 *
 * @module
 */
import { LockError } from "./errors.ts";

/**
 * The error for an aborted `signal`: its reason when that is already a
 * `LockError` (as `close()` gives), else `ABORTED` with the reason as cause.
 */
export function abortError(signal: AbortSignal | undefined): LockError {
  const reason: unknown = signal?.reason;
  return reason instanceof LockError
    ? reason
    : new LockError("the operation was aborted", "ABORTED", { cause: reason });
}

/** Throw at once if `signal` has already aborted. */
export function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}
