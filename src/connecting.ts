/**
 * The connect step of an attempt (attempt.ts): a new connection of the
 * attempt's own, or a wait for one being opened for sharing (sharing-dial.ts),
 * and what ends either when the generation ends. Kept apart from the request
 * and its retry, which are attempt.ts's.
 *
 * @module
 */

import { abortError } from "./cancel.ts";
import type { Connection } from "./connection.ts";
import type { LockDriver } from "./driver.ts";
import { LockError, quote } from "./errors.ts";
import type { Link } from "./link.ts";
import { openConnection } from "./open.ts";
import type { Target } from "./options.ts";
import type { SharingDial } from "./sharing-dial.ts";

/** The connect in progress for one lock's attempts, at most one at a time: its own, or a wait on a shared one. */
export class Connecting {
  readonly #d: LockDriver;
  /** Aborted when the generation ends: cancels a connect of the attempt's own. */
  #own: AbortController | undefined;
  /** A connection being opened for sharing that the attempt waits for: left when the generation ends. */
  #joined: SharingDial | undefined;

  constructor(driver: LockDriver) {
    this.#d = driver;
  }

  /**
   * End what is in progress: abort a connect of the attempt's own, or leave a wait on one being opened for
   * sharing (which cancels that connect if this attempt was the last to wait).
   */
  cancel(reason: LockError | undefined): void {
    const own = this.#own;
    const joined = this.#joined;
    if (own === undefined && joined === undefined) return;
    this.#own = undefined;
    this.#joined = undefined;
    const why = reason ?? new LockError(`${quote(this.#d.key)} was released while connecting`, "ABORTED");
    own?.abort(why);
    joined?.leave(this.#d.id, this.#d, why);
  }

  /** A new connection of its own to `target` for attempt `epoch`: cancelled by {@link cancel} or `signal`. */
  async dial(target: Target, epoch: number, signal: AbortSignal | undefined): Promise<Link> {
    const d = this.#d;
    const pool = d.pool;
    const attempt = new AbortController();
    this.#own = attempt;
    let conn: Connection;
    const connectStart = performance.now();
    // cancel() aborts `attempt`; the caller's signal is raced (and closes the connection) the same way.
    const onAbort = (): void => attempt.abort(abortError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    pool.dialing(target.poolKey, 1);
    try {
      conn = await openConnection(target.open, attempt.signal);
    } catch (err) {
      d.endAttempt(epoch, "failed", err instanceof LockError ? err : undefined);
      throw err;
    } finally {
      pool.dialing(target.poolKey, -1);
      signal?.removeEventListener("abort", onAbort);
      if (this.#own === attempt) this.#own = undefined;
    }
    d.lease.sampleRtt(performance.now() - connectStart);
    return pool.attach(conn, target.poolKey, d.id, d);
  }

  /**
   * Wait for a connection opened for sharing: {@link cancel} or `signal` leave
   * the wait, not the connect (unless this attempt was the last to wait).
   */
  async join(dial: SharingDial, epoch: number, signal: AbortSignal | undefined): Promise<Link> {
    const d = this.#d;
    this.#joined = dial;
    // No RTT sample: the connect's time is no round trip of this attempt's (renewals sample it, as on a lent one).
    // No listener closure without a signal: a burst of joiners makes none.
    const onAbort = signal === undefined ? undefined : (): void => dial.leave(d.id, d, abortError(signal));
    if (onAbort !== undefined) signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await dial.join(d.id, d);
    } catch (err) {
      d.endAttempt(epoch, "failed", err instanceof LockError ? err : undefined);
      throw err;
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
      // Only while still this attempt's: an ending clears it, and a new attempt may wait for the same dial.
      if (this.#joined === dial && d.epoch === epoch) this.#joined = undefined;
    }
  }
}
