/**
 * The one check of a server's host, once split from its port: for the
 * `servers` option's strings and pairs (and `eachServer()`'s fast path), the
 * command line's `--servers` and `DFLOCKD_SERVERS` (through `splitHostPort()`),
 * and the deprecated `host` option. One function, so that the forms cannot
 * drift apart and a host that no form accepts never reaches a connect.
 *
 * @module
 */

/** What a message says of a host with a `/` in it. */
export const URL_NOT_SERVER = "a URL is not a server: write host:port without a scheme";

/** A host name never holds a control character or any Unicode whitespace. */
export const NOT_IN_HOST = /[\u0000-\u0020\u007f\s]/u;

/** What makes a text no server's host; see {@link hostProblem}. */
export type HostProblem =
  /** Empty. */
  | "empty"
  /** A control character or whitespace. */
  | "space"
  /**
   * `[` or `]`: brackets go around an IPv6 address in `"[::1]:6388"`, never
   * inside a host (Go's `net.SplitHostPort` refuses them too).
   */
  | "brackets"
  /** A `/`: no host has one; a URL (`"tcp://db1:6388"`) or a path was written where the host goes. */
  | "slash"
  /**
   * Exactly one `:`: `host:port` written where the host goes. A host with a
   * colon is an IPv6 address, and an IPv6 address has at least two (`::1`).
   */
  | "colon";

/**
 * What makes `host` (already split from its port, an IPv6 address without
 * brackets) no server's host, or `undefined` for a host that may be one.
 * Allocates nothing.
 *
 * @param host The host.
 * @returns The problem, or `undefined`.
 * @example
 * ```ts
 * import { hostProblem } from "./host.ts";
 *
 * hostProblem("::1"); // undefined
 * hostProblem("10.0.0.1:6388"); // "colon"
 * hostProblem("[::1"); // "brackets"
 * hostProblem("tcp://db1:6388"); // "slash"
 * ```
 */
export function hostProblem(host: string): HostProblem | undefined {
  if (host === "") return "empty";
  if (NOT_IN_HOST.test(host)) return "space";
  if (host.includes("[") || host.includes("]")) return "brackets";
  if (host.includes("/")) return "slash";
  const colon = host.indexOf(":");
  if (colon >= 0 && host.indexOf(":", colon + 1) < 0) return "colon";
  return undefined;
}

/**
 * Whether `port` is a TCP port a server can listen on: a whole number from 1
 * to 65535. The one check of a port, for every form a server is written in.
 *
 * @param port The port given.
 * @returns Whether it is one.
 */
export function isPort(port: unknown): port is number {
  return typeof port === "number" && Number.isInteger(port) && port >= 1 && port <= 65535;
}

/**
 * A host with one `:` read as the `host:port` it looks like: the part before
 * the colon, and the part after it if that is a port, else `port`. For the
 * hint of a message.
 *
 * @param host A host whose problem is `"colon"`.
 * @param port The port given beside it, if any.
 * @returns The host and port it probably means, or `undefined` when no good pair comes of it.
 */
export function meantHostPort(host: string, port: unknown): readonly [host: string, port: number] | undefined {
  const colon = host.indexOf(":");
  const name = host.slice(0, colon);
  const after = host.slice(colon + 1);
  const p = /^\d+$/.test(after) && isPort(Number(after)) ? Number(after) : port;
  return hostProblem(name) === undefined && isPort(p) ? [name, p] : undefined;
}
