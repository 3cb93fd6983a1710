/**
 * The `ping` that keeps an idle pooled connection open past the server's read
 * timeout, and which servers answer it: dflockd v1.14 and later answer `ok`;
 * older ones answer `error` and carry on (they read a line, so their read
 * timeout restarts too). The idle list (idle.ts) decides when to ping, and
 * what becomes of a link after each answer.
 *
 * @module
 */
import { ServerError } from "./errors.ts";
import type { Link } from "./link.ts";
import { PING_REQUEST, parseOkReply } from "./protocol.ts";

/** How long a connection may stay idle in a pool, by default, kept open with `ping` where the server answers it. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * How long the idle list waits for a ping's answer before it gives the
 * connection up (and closes it in its turn, never in a burst).
 */
export const PING_TIMEOUT_MS = 5_000;

/** The connection's own reply deadline for a ping: none to speak of, as the idle list keeps the real one. */
const NO_DEADLINE_MS = 2_147_483_647;

/** How a ping was answered: `ok`, `error` (no `ping` on that server), or anything else (or the connection closed). */
export type PingAnswer = "ok" | "refused" | "failed";

/**
 * Whether `err`, the rejection of a `ping`, says the server has no `ping`: a
 * bare `error` (dflockd before v1.14). Anything else (`error_draining`, a lost
 * connection) says nothing of that.
 */
export function isPingRefusal(err: unknown): boolean {
  return err instanceof ServerError && err.status === "error";
}

/** The pings of one pool, and the servers known not to answer them. */
export class Keepalive {
  /** Pool keys of servers that answered `ping` with `error` (before v1.14). */
  readonly #noPing = new Set<string>();
  readonly #done: (link: Link, answer: PingAnswer) => void;

  /** @param done Told how each ping was answered. */
  constructor(done: (link: Link, answer: PingAnswer) => void) {
    this.#done = done;
  }

  /** Whether server `poolKey` is known not to answer `ping`. */
  knownNoPing(poolKey: string): boolean {
    return this.#noPing.has(poolKey);
  }

  /** Server `poolKey` answered `ping` with `error`. */
  learnNoPing(poolKey: string): void {
    this.#noPing.add(poolKey);
  }

  /** Ping the idle `link`. The wait keeps no process alive, and no timer of the connection closes it. */
  send(link: Link): void {
    link.conn.request(PING_REQUEST, "ping", parseOkReply, NO_DEADLINE_MS, true).then(
      () => this.#done(link, "ok"),
      (err: unknown) => this.#done(link, isPingRefusal(err) ? "refused" : "failed"),
    );
  }
}
