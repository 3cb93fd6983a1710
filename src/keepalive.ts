/**
 * Keeping idle pooled connections open past the server's read timeout with
 * `ping`, and learning which servers answer it: dflockd v1.14 and later
 * answer `ok`; older ones answer `error` and carry on, so there the pool
 * closes idle connections as their read timeout nears, as it always did.
 *
 * One ping per server goes first while its answer is not known: a v1.10
 * server then costs one `error`, not one per idle connection, and its idle
 * connections still close one at a time (never a burst of closes).
 *
 * @module
 */
import { DEFAULT_REQUEST_TIMEOUT_MS } from "./connection.ts";
import { ServerError } from "./errors.ts";
import type { Link } from "./link.ts";
import { PING_REQUEST, parseOkReply } from "./protocol.ts";

/** How long a connection may stay idle in a pool, by default, kept open with `ping` where the server answers it. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * What is known of a server's `ping`: it answers (`"yes"`), it does not
 * (`"no"`), not known yet (`"ask"`), or a first ping is on its way (`"asking"`).
 */
export type PingStatus = "yes" | "no" | "ask" | "asking";

/**
 * The pings of one pool. A pinged link leaves the idle list until its answer:
 * {@link Keepalive}'s callback hands it back with its new lending deadline,
 * or `undefined` once it is closed.
 */
export class Keepalive {
  /** Per pool key: whether the server answers `ping` (absent: not known yet). */
  readonly #answers = new Map<string, boolean>();
  /** Pool keys whose first ping is on its way. */
  readonly #asking = new Set<string>();
  /** Links waiting for a ping's answer: idle, so {@link closeAll} closes them. */
  readonly #inFlight = new Set<Link>();
  readonly #done: (link: Link, until: number | undefined) => void;

  /** @param done Told when a pinged link is lendable again until `until`, or closed (`undefined`). */
  constructor(done: (link: Link, until: number | undefined) => void) {
    this.#done = done;
  }

  /** What is known of the `ping` of server `poolKey`. */
  status(poolKey: string): PingStatus {
    if (this.#asking.has(poolKey)) return "asking";
    const answers = this.#answers.get(poolKey);
    return answers === undefined ? "ask" : answers ? "yes" : "no";
  }

  /**
   * Ping the idle `link`, lendable until `until` (which its last request set):
   * an `ok` moves that deadline on by as much as the ping came after that
   * request. The wait does not keep the process alive.
   */
  send(link: Link, until: number): void {
    const key = link.poolKey;
    const first = !this.#answers.has(key);
    if (first) this.#asking.add(key);
    const span = until - link.conn.lastSendAt;
    this.#inFlight.add(link);
    link.conn.request(PING_REQUEST, "ping", parseOkReply, DEFAULT_REQUEST_TIMEOUT_MS, true).then(
      () => this.#answered(link, first, true, span),
      // Only a bare `error` says "no ping here" (v1.10 to v1.13); `error_draining` or a lost connection says nothing.
      (err: unknown) =>
        this.#answered(link, first, err instanceof ServerError && err.status === "error" ? false : undefined, span),
    );
  }

  /** Close every link waiting for a ping's answer (the pool's idle connections are being closed). */
  closeAll(): void {
    const links = [...this.#inFlight];
    this.#inFlight.clear();
    for (const link of links) link.conn.close();
  }

  #answered(link: Link, first: boolean, answers: boolean | undefined, span: number): void {
    if (first) this.#asking.delete(link.poolKey);
    if (answers !== undefined) this.#answers.set(link.poolKey, answers);
    if (!this.#inFlight.delete(link)) return;
    if (answers === true && !link.conn.closed) {
      this.#done(link, link.conn.lastSendAt + span);
      return;
    }
    link.conn.close();
    this.#done(link, undefined);
  }
}
