/**
 * One pooled connection and who uses it ({@link ConnectionPool} in
 * pool.ts lends, shares and takes these back), and `count()`, the tally of
 * lock identities that shared-links.ts keeps for a server's shared ones.
 *
 * @module
 */
import type { CloseInfo, Connection } from "./connection.ts";

/** An instance using a {@link Link}: told when its connection closes. */
export interface LinkUser {
  linkClosed(info: CloseInfo): void;
}

/**
 * One pooled connection and who uses it: the instances with an attempt or
 * a holding on it, by lock identity (kind and key).
 */
export class Link {
  readonly conn: Connection;
  readonly poolKey: string;
  /** Lent to one attempt that may block: nothing else may use it. */
  exclusive = true;
  /** Index in the server's list of shared connections, or -1 when not listed. */
  slot = -1;
  /** While idle (idle.ts): when it became idle (monotonic ms); how long `ping` may keep it open counts from here. */
  idleSince = 0;
  /** While idle: how long it is lent after its last request (the read timeout, less a guard). */
  spanMs = 0;
  /** While idle: how long after its lending deadline a `ping` may still go (later, the server may have cut it). */
  graceMs = 0;
  /** While idle: its last `ping` was answered `error` (a server before v1.14). */
  pingRefused = false;
  readonly users: LinkUsers = new LinkUsers();

  readonly #gone: () => void;

  constructor(conn: Connection, poolKey: string, gone: () => void) {
    this.conn = conn;
    this.poolKey = poolKey;
    this.#gone = gone;
    conn.bindOwner(this.#closed);
  }

  readonly #closed = (info: CloseInfo): void => {
    this.#gone();
    for (const u of this.users.values()) u.linkClosed(info);
  };
}

/**
 * A link's users by lock identity, with the part of a `Map`'s interface the
 * pool uses, in a `Map`'s order. The first user is kept in two fields, the
 * others in a `Map` made for them: a connection lent to one acquire + release
 * at a time gains and loses its one user on every operation, and a `Map`
 * that empties makes a new table each time, which lives as long as the link
 * and so reaches the old generation (on Node; what it cost is in the
 * CHANGELOG, "Speed (issue 19)").
 */
export class LinkUsers {
  /** The first user, while there is one; always older than any in {@link #more}. */
  #firstId: string | undefined;
  #first: LinkUser | undefined;
  /** The others, in the order they came (made for the second user, then kept). */
  #more: Map<string, LinkUser> | undefined;

  /** How many users. */
  get size(): number {
    return (this.#firstId === undefined ? 0 : 1) + (this.#more?.size ?? 0);
  }

  /** The user of lock `id`, if it uses the link. */
  get(id: string): LinkUser | undefined {
    return id === this.#firstId ? this.#first : this.#more?.get(id);
  }

  /** Whether lock `id` uses the link. */
  has(id: string): boolean {
    return id === this.#firstId || this.#more?.has(id) === true;
  }

  /** Lock `id` uses the link, as `user` (in place if it already did). */
  set(id: string, user: LinkUser): void {
    if (id === this.#firstId) this.#first = user;
    else if (this.#firstId === undefined && (this.#more === undefined || this.#more.size === 0)) {
      this.#firstId = id;
      this.#first = user;
    } else {
      this.#more ??= new Map();
      this.#more.set(id, user);
    }
  }

  /** Lock `id` no longer uses the link. @returns whether it did. */
  delete(id: string): boolean {
    if (id !== this.#firstId) return this.#more?.delete(id) === true;
    this.#firstId = undefined;
    this.#first = undefined;
    return true;
  }

  /** Add `delta` to each user's count in `counts` (dropping those that reach 0): no list made. */
  countInto(counts: Map<string, number>, delta: 1 | -1): void {
    if (this.#firstId !== undefined) count(counts, this.#firstId, delta);
    if (this.#more !== undefined) for (const id of this.#more.keys()) count(counts, id, delta);
  }

  /** The users now, oldest first: a copy, so that a user may leave while the list is read. */
  values(): LinkUser[] {
    const all: LinkUser[] = [];
    if (this.#firstId !== undefined) all.push(this.#first as LinkUser);
    if (this.#more !== undefined) for (const u of this.#more.values()) all.push(u);
    return all;
  }
}

/** Add `delta` to `id`'s count in `counts`, dropping it at 0. */
export function count(counts: Map<string, number>, id: string, delta: 1 | -1): void {
  const n = (counts.get(id) ?? 0) + delta;
  if (n > 0) counts.set(id, n);
  else counts.delete(id);
}
