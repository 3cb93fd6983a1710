/**
 * Cancellation helpers shared by the lock primitives.
 *
 * @module
 */
import { LockError } from "./errors.ts";

/** The `ABORTED` error for `signal`, with its reason as the cause. */
export function abortError(signal: AbortSignal | undefined): LockError {
  const reason: unknown = signal?.reason;
  return new LockError("the operation was aborted", "ABORTED", { cause: reason });
}

/** Throw at once if `signal` has already aborted. */
export function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}
