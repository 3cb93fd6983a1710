/**
 * One pooled connection and who uses it ({@link ConnectionPool} in
 * pool.ts lends, shares and takes these back).
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
  readonly users: Map<string, LinkUser> = new Map();

  readonly #gone: () => void;

  constructor(conn: Connection, poolKey: string, gone: () => void) {
    this.conn = conn;
    this.poolKey = poolKey;
    this.#gone = gone;
    conn.bindOwner(this.#closed);
  }

  readonly #closed = (info: CloseInfo): void => {
    this.#gone();
    for (const u of [...this.users.values()]) u.linkClosed(info);
  };
}
