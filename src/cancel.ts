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

const sourceOf: (this: unknown) => string = Function.prototype.toString;

/** Space, tab, LF, CR: the only spacing {@link readsArguments} skips; anything else counts as a parameter. */
function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * Whether `fn` can see the arguments it is called with. Only an arrow
 * function (`() => ...`, `async () => ...`) written with an empty parameter
 * list cannot: it has no parameters, no rest parameter, and no `arguments`
 * of its own. Anything else can, including a function whose `length` is 0
 * (`(...args) => ...`, `(s = x) => ...`, `function () { arguments[0] }`, a
 * bound function or a wrapper), and so does anything this check cannot read
 * for sure (a comment in the parameter list, a native or bound function).
 */
export function readsArguments(fn: (...args: never) => unknown): boolean {
  if (fn.length !== 0) return true;
  let s: string;
  try {
    s = sourceOf.call(fn);
  } catch {
    return true;
  }
  let i = 0;
  // `async` then `(` or spacing: an async arrow, or a method named async (told apart by `=>` below).
  if (s.startsWith("async") && (s.charCodeAt(5) === 0x28 || isSpace(s.charCodeAt(5)))) i = 5;
  while (isSpace(s.charCodeAt(i))) i++;
  if (s.charCodeAt(i) !== 0x28) return true;
  i++;
  while (isSpace(s.charCodeAt(i))) i++;
  if (s.charCodeAt(i) !== 0x29) return true;
  i++;
  while (isSpace(s.charCodeAt(i))) i++;
  // `() =>`: an arrow. `() {`: a method (`async () {}`), which has `arguments`.
  return !(s.charCodeAt(i) === 0x3d && s.charCodeAt(i + 1) === 0x3e);
}
