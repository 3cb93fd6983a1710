/**
 * Sockets the user created, adopted by the low-level functions: what they
 * accept as a first argument, and how it becomes a {@link Connection}.
 *
 * @module
 */
import { Connection } from "./connection.ts";
import { InvalidArgumentError } from "./errors.ts";
import { runtime } from "./transport.ts";
import { describeValue } from "./validate.ts";

const adopted = new WeakMap<object, Connection>();

/**
 * The shape of a Node-style socket the low-level functions can adopt: a
 * `net.Socket` (Node's, or the emulation in Bun and Deno) you created. A
 * plain object does not fit it, so passing one by mistake is a type error.
 *
 * @example
 * ```ts
 * import * as net from "node:net";
 * import type { NodeSocketLike } from "dflockd-client";
 *
 * const sock: NodeSocketLike = net.createConnection({ host: "127.0.0.1", port: 6388 });
 * ```
 */
export interface NodeSocketLike {
  /** Whether the socket is closed. */
  readonly destroyed: boolean;
  /** Sends bytes. */
  write(data: Uint8Array): unknown;
  /** Listens for `data`, `error`, `close` and `end`. */
  on(event: string, listener: (...args: never[]) => void): unknown;
  /** Closes the socket. */
  destroy(): unknown;
  /** Turns Nagle's algorithm off or on. */
  setNoDelay(noDelay?: boolean): unknown;
}

/**
 * What the low-level functions accept: a {@link Connection}, or on runtimes
 * that support it a socket the caller created ({@link NodeSocketLike}, such
 * as a Node `net.Socket`).
 *
 * @example
 * ```ts
 * import * as net from "node:net";
 * import { connect, type SocketLike } from "dflockd-client";
 *
 * const a: SocketLike = await connect();
 * const b: SocketLike = net.createConnection({ host: "127.0.0.1", port: 6388 });
 * ```
 */
export type SocketLike = Connection | NodeSocketLike;

/** Resolve the first argument of a low-level function to a {@link Connection}. */
export function asConnection(sock: SocketLike): Connection {
  if (sock instanceof Connection) return sock;
  if (typeof sock === "object" && sock !== null) {
    const known = adopted.get(sock);
    if (known !== undefined) return known;
    const stream = runtime().adopt?.(sock);
    if (stream !== undefined) {
      const conn = new Connection(stream);
      adopted.set(sock, conn);
      return conn;
    }
  }
  throw new InvalidArgumentError(
    `expected a Connection from connect()${runtime().adopt ? " or a socket" : ""}, got ${describeValue(sock)}`,
  );
}
