/**
 * Turns among the concurrent `withLock()` callers of one instance: first come,
 * first served within the process, before the server's own queue. A caller
 * waits for its turn until the one before it has released, and may give up
 * waiting when its signal aborts or its deadline passes.
 *
 * @module
 */
import { abortError } from "./cancel.ts";
import type { LockError } from "./errors.ts";
import { backgroundTimer } from "./transport.ts";

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: LockError) => void;
  /** Undo what waiting set up (abort listener, deadline timer). */
  cleanup(): void;
}

/** A FIFO of callers taking turns. */
export class Turns {
  #busy = false;
  readonly #waiting: Waiter[] = [];

  /** Take the turn if it is free now (the usual case, with nothing allocated): `false` means {@link wait} for it. */
  take(): boolean {
    if (this.#busy || this.#waiting.length !== 0) return false;
    this.#busy = true;
    return true;
  }

  /**
   * Wait for the next turn, after the callers already waiting.
   *
   * @param signal Stop waiting when it aborts: the promise rejects with its reason.
   * @param waitMs Stop waiting after this long (`Infinity`: never): the promise rejects with `timedOut()`.
   * @returns A promise that resolves when the turn comes.
   */
  wait(signal: AbortSignal | undefined, waitMs: number, timedOut: () => LockError): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => giveUp(abortError(signal));
      // No timer for a wait without limit: a runtime timer would fire after 2^31 - 1 ms (24.8 days).
      const timer = Number.isFinite(waitMs) ? backgroundTimer(() => giveUp(timedOut()), waitMs) : undefined;
      const waiter: Waiter = {
        resolve,
        reject,
        cleanup() {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      const giveUp = (err: LockError): void => {
        const i = this.#waiting.indexOf(waiter);
        if (i === -1) return;
        this.#waiting.splice(i, 1);
        waiter.cleanup();
        reject(err);
      };
      this.#waiting.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** `true` while a caller waits for a turn. */
  get waiting(): boolean {
    return this.#waiting.length > 0;
  }

  /** The turn is over: hand it to the next waiter, or leave it free. */
  pass(): void {
    const next = this.#waiting.shift();
    if (next === undefined) {
      this.#busy = false;
      return;
    }
    next.cleanup();
    next.resolve();
  }

  /** Reject every waiter with `err` (the instance was closed). The current turn is unaffected. */
  rejectAll(err: LockError): void {
    for (const w of this.#waiting.splice(0)) {
      w.cleanup();
      w.reject(err);
    }
  }
}
