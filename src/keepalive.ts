/**
 * Keeping idle pooled connections open past the server's read timeout with
 * `ping`, and learning which servers answer it: dflockd v1.14 and later
 * answer `ok`; older ones answer `error` and carry on (they read a line, so
 * their read timeout restarts too).
 *
 * A link answered `error` comes back as idle, marked {@link Link.pingRefused}:
 * its server is then known to lack `ping`, and the idle list closes the link
 * when its time next comes, spaced like every close (never all at once).
 * A ping goes only while the server cannot have cut the connection (the idle
 * list sends none late, after a stalled event loop), so the `error` that a
 * server writes when its read timeout cuts a connection is not mistaken for
 * this answer, unless `serverReadTimeoutS` is longer than the server's.
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
 * The pings of one pool. A pinged link leaves the idle list until its answer:
 * the callback hands it back with its new lending deadline, or `undefined`
 * once it is closed.
 */
export class Keepalive {
  /** Pool keys of servers known to answer `ping` with `error` (before v1.14). */
  readonly #noPing = new Set<string>();
  /** Links waiting for a ping's answer: idle, so {@link closeAll} closes them. */
  readonly #inFlight = new Set<Link>();
  readonly #done: (link: Link, until: number | undefined) => void;

  /** @param done Told when a pinged link is lendable again until `until`, or closed (`undefined`). */
  constructor(done: (link: Link, until: number | undefined) => void) {
    this.#done = done;
  }

  /** Whether server `poolKey` is known not to answer `ping`. */
  knownNoPing(poolKey: string): boolean {
    return this.#noPing.has(poolKey);
  }

  /** Server `poolKey` answered `ping` with `error`, and kept the connection open. */
  learnNoPing(poolKey: string): void {
    this.#noPing.add(poolKey);
  }

  /**
   * Ping the idle `link`, lendable until `until` (which its last request set):
   * an answer moves that deadline on by as much as the ping came after that
   * request. The wait does not keep the process alive.
   */
  send(link: Link, until: number): void {
    const span = until - link.conn.lastSendAt;
    this.#inFlight.add(link);
    link.conn.request(PING_REQUEST, "ping", parseOkReply, DEFAULT_REQUEST_TIMEOUT_MS, true).then(
      () => this.#answered(link, span, false),
      // A bare `error`: no ping here (v1.10 to v1.13), or a cut; `error_draining` or a lost connection: closed.
      (err: unknown) =>
        this.#answered(link, err instanceof ServerError && err.status === "error" ? span : undefined, true),
    );
  }

  /** Close every link waiting for a ping's answer (the pool's idle connections are being closed). */
  closeAll(): void {
    const links = [...this.#inFlight];
    this.#inFlight.clear();
    for (const link of links) link.conn.close();
  }

  #answered(link: Link, span: number | undefined, refused: boolean): void {
    if (!this.#inFlight.delete(link)) return;
    if (span !== undefined && !link.conn.closed) {
      link.pingRefused = refused;
      this.#done(link, link.conn.lastSendAt + span);
      return;
    }
    link.conn.close();
    this.#done(link, undefined);
  }
}
