/**
 * A connection being opened to be shared, and the attempts waiting for it.
 *
 * Once a server has the pool's `shareAfter` connections open or opening, an
 * attempt that may share, and finds no shared connection with room, does not
 * open a connection of its own: it joins one being opened for sharing (or
 * starts one), up to `MAX_SHARED` attempts per connection, and sends its try
 * (`l key 0`) there once it is up. 1,000 first acquisitions started together
 * so open `shareAfter` + 16 connections, not 1,000: on Deno, where each open
 * connection costs about 30 KiB of memory, that was most of what 10,000 held
 * locks cost.
 *
 * What each joiner may count on:
 * - It may leave while the connection opens (its signal aborts, or its
 *   instance is closed): its own wait rejects with the reason, and no other
 *   joiner notices. Waiting costs no `AbortController`: a burst's thousand
 *   of them were, on Deno, 0.7 KiB of memory for each lock it came to hold.
 * - The connect is cancelled only once every joiner has left, and then takes
 *   no new joiner.
 * - A connect that fails rejects every joiner still waiting, with its error,
 *   as it would have rejected the attempt that had opened it.
 *
 * The pool (pool.ts) keeps these per server, opens the connection, and makes
 * its link; this class only keeps the joiners.
 *
 * @module
 */
import type { Link, LinkUser } from "./link.ts";
import { MAX_SHARED } from "./shared-links.ts";

/** An attempt waiting for the connection. */
interface Joiner {
  readonly user: LinkUser;
  readonly resolve: (link: Link) => void;
  readonly reject: (reason: unknown) => void;
}

/** A connection being opened for sharing, and who waits for it, by lock identity. */
export class SharingDial {
  readonly #joiners = new Map<string, Joiner>();
  readonly #connect = new AbortController();
  /** The connect timeout it was opened with: a joiner waits no longer than its own would have. */
  readonly connectTimeoutMs: number;
  /** Takes no new joiner: everyone left (the connect is cancelled), or it is settled. */
  closed = false;

  constructor(connectTimeoutMs: number) {
    this.connectTimeoutMs = connectTimeoutMs;
  }

  /** Aborted once every joiner has left: cancels the connect. */
  get signal(): AbortSignal {
    return this.#connect.signal;
  }

  /** Whether an acquire with `connectTimeoutMs` may join: open to joiners, with room (the pool keeps a key to one). */
  admits(connectTimeoutMs: number): boolean {
    return !this.closed && this.connectTimeoutMs === connectTimeoutMs && this.#joiners.size < MAX_SHARED;
  }

  /**
   * Wait for the connection as lock `id` (`user`). Resolves with its link,
   * on which `id` is a user already; rejects with the connect's error, or
   * with the reason given to {@link leave}.
   */
  join(id: string, user: LinkUser): Promise<Link> {
    return new Promise<Link>((resolve, reject) => {
      this.#joiners.set(id, { user, resolve, reject });
    });
  }

  /**
   * `user` (lock `id`) stops waiting: its wait rejects with `reason`, the
   * others go on waiting, and the last to leave cancels the connect. No-op
   * unless `user` is waiting (another instance of the key may wait in its
   * place, once it has left).
   */
  leave(id: string, user: LinkUser, reason: unknown): void {
    const j = this.#joiners.get(id);
    if (j === undefined || j.user !== user) return;
    this.#joiners.delete(id);
    j.reject(reason);
    if (this.#joiners.size > 0 || this.closed) return;
    this.closed = true;
    this.#connect.abort(reason);
  }

  /** Whether lock `id` waits for it. */
  has(id: string): boolean {
    return this.#joiners.has(id);
  }

  /** How many wait. */
  get size(): number {
    return this.#joiners.size;
  }

  /** The connection is up as `link`: every joiner still waiting becomes its user, and gets it. */
  deliver(link: Link): void {
    this.closed = true;
    const joiners = [...this.#joiners];
    this.#joiners.clear();
    for (const [id, j] of joiners) link.users.set(id, j.user);
    for (const [, j] of joiners) j.resolve(link);
  }

  /** The connect failed (or the pool closed): every joiner still waiting gets `reason`. */
  fail(reason: unknown): void {
    this.closed = true;
    const joiners = [...this.#joiners.values()];
    this.#joiners.clear();
    for (const j of joiners) j.reject(reason);
  }
}
