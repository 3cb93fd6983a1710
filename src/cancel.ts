/**
 * Cancellation helpers shared by the lock primitives.
 *
 * @module
 */
import { LockError } from "./errors.ts";
import { backgroundTimer } from "./transport.ts";

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

/**
 * A signal that aborts when `signal` does (with its reason) or when `ms`
 * have passed (with `timedOut()`), for a call given its own time limit.
 * `dispose()` when the call is over: it stops the timer and the listener.
 */
export function deadlineSignal(
  signal: AbortSignal | undefined,
  ms: number,
  timedOut: () => LockError,
): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  const timer = backgroundTimer(() => controller.abort(timedOut()), ms);
  if (signal?.aborted) controller.abort(signal.reason);
  else signal?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    },
  };
}
