/**
 * One server's shared connections (pool.ts): the links with holdings that
 * other instances may join with tries, which lock identities are on them,
 * and how many have room. Each question the pool asks on every acquire is
 * answered without looking through the links: whether a key is here
 * already ({@link SharedLinks.has}), and whether any link has room
 * ({@link SharedLinks.find} returns at once when none has). With 100,000
 * locks held, 1,563 links of 64 each, a look through all of them for each
 * acquire took 1.4 s of CPU over the bench's mass case.
 *
 * Every change to a listed link's users goes through here: a join
 * ({@link SharedLinks.joined}), a leave ({@link SharedLinks.left}), and
 * listing and unlisting, which count the users the link has then.
 *
 * @module
 */
import { count, type Link } from "./link.ts";

/** Holdings placed on one shared connection, at most: bounds what one lost connection takes with it. */
export const MAX_SHARED = 64;

/** The links of one server that take tries from other instances. */
export class SharedLinks {
  /** The listed links, each at its `slot`. */
  readonly #links: Link[] = [];
  /** The lock identities on listed links, each with the number of links it is on. */
  readonly #keys = new Map<string, number>();
  /** How many listed links have fewer than {@link MAX_SHARED} users. */
  #room = 0;

  /** How many links are listed. */
  get size(): number {
    return this.#links.length;
  }

  /** Whether `link` is listed here (not in another server entry's list, nor unlisted). */
  holds(link: Link): boolean {
    return link.slot !== -1 && this.#links[link.slot] === link;
  }

  /** Whether lock `id` is on a listed link. */
  has(id: string): boolean {
    return this.#keys.has(id);
  }

  /** A listed link with room that lock `id` is not on, newest first; `undefined` at once if none has room. */
  find(id: string): Link | undefined {
    if (this.#room === 0) return undefined;
    const links = this.#links;
    for (let i = links.length - 1; i >= 0; i--) {
      const link = links[i] as Link;
      if (link.exclusive || link.conn.closed || link.users.size >= MAX_SHARED || link.users.has(id)) continue;
      return link;
    }
    return undefined;
  }

  /** List `link`, with the users it has now. */
  list(link: Link): void {
    link.slot = this.#links.length;
    this.#links.push(link);
    this.#tally(link, 1);
  }

  /** Unlist `link` (only marked unlisted unless listed here), with the users it has now. */
  unlist(link: Link): void {
    const i = link.slot;
    link.slot = -1;
    if (i === -1 || this.#links[i] !== link) return;
    this.#tally(link, -1);
    const last = this.#links.pop() as Link;
    if (last !== link) {
      this.#links[i] = last;
      last.slot = i;
    }
  }

  /** Lock `id` was just added to listed `link`'s users. */
  joined(link: Link, id: string): void {
    count(this.#keys, id, 1);
    if (link.users.size === MAX_SHARED) this.#room--;
  }

  /** Lock `id` was just removed from listed `link`'s users. */
  left(link: Link, id: string): void {
    count(this.#keys, id, -1);
    if (link.users.size === MAX_SHARED - 1) this.#room++;
  }

  #tally(link: Link, delta: 1 | -1): void {
    link.users.countInto(this.#keys, delta);
    if (link.users.size < MAX_SHARED) this.#room += delta;
  }
}
