/**
 * Server addresses as the API takes them: `"host:port"` strings (an IPv6
 * address in brackets, `"[::1]:6388"`) and `[host, port]` pairs, checked and
 * turned into one form. The command line's `--servers` and `DFLOCKD_SERVERS`
 * are read by the same {@link splitHostPort}.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { quote } from "./quote.ts";
import { describeValue } from "./validate.ts";

/**
 * One server: `"host:port"` (an IPv6 address in brackets: `"[::1]:6388"`) or
 * a `[host, port]` pair. A plain array such as `["10.0.0.1", 6388]` whose type
 * is inferred as `(string | number)[]` is accepted too, and checked when the
 * option is read: the host a non-empty string without whitespace, the port a
 * whole number from 1 to 65535.
 *
 * @example
 * ```ts
 * import { DistributedLock, type ServerAddress } from "dflockd-client";
 *
 * const servers: ServerAddress[] = ["10.0.0.1:6388", ["10.0.0.2", 6388], "[fd00::3]:6388"];
 * const lock = new DistributedLock({ key: "k", servers });
 * ```
 */
export type ServerAddress = string | readonly [host: string, port: number] | ReadonlyArray<string | number>;

/** What {@link splitHostPort} found wrong with a `host:port` text. */
export type HostPortProblem =
  /** `[` without its `]`, or something other than `:port` after the `]`. */
  | "brackets"
  /** More than one `:` outside brackets: an IPv6 address, which needs them. */
  | "ipv6"
  /** No `:port`, and no default port. */
  | "noPort"
  /** An empty host, or a port that is not a whole number from 1 to 65535. */
  | "form";

/**
 * Split `host:port` (`[ipv6]:port`) into host and port. Nothing is trimmed.
 *
 * @param text One server, as written.
 * @param defaultPort The port of a host written alone (the command line's
 *   6388); `undefined`: a port is required.
 * @returns The host (without brackets) and port, or what is wrong.
 * @example
 * ```ts
 * import { splitHostPort } from "./servers.ts";
 *
 * splitHostPort("[::1]:6388"); // { ok: true, host: "::1", port: 6388 }
 * splitHostPort("db1"); // { ok: false, problem: "noPort" }
 * ```
 */
export function splitHostPort(
  text: string,
  defaultPort?: number,
):
  | { readonly ok: true; readonly host: string; readonly port: number }
  | { readonly ok: false; readonly problem: HostPortProblem } {
  let host = text;
  let port: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    const after = text.slice(close + 1);
    if (close < 0 || (after !== "" && !after.startsWith(":"))) return { ok: false, problem: "brackets" };
    host = text.slice(1, close);
    if (after !== "") port = after.slice(1);
  } else {
    const colon = text.indexOf(":");
    if (colon >= 0) {
      if (text.indexOf(":", colon + 1) >= 0) return { ok: false, problem: "ipv6" };
      host = text.slice(0, colon);
      port = text.slice(colon + 1);
    }
  }
  if (port === undefined) {
    if (defaultPort === undefined) return { ok: false, problem: host === "" ? "form" : "noPort" };
    port = String(defaultPort);
  }
  const n = Number(port);
  if (host === "" || !/^\d+$/.test(port) || n < 1 || n > 65535) return { ok: false, problem: "form" };
  return { ok: true, host, port: n };
}

/** The accepted forms, as every message about a bad server ends. */
export const SERVER_FORMS =
  'a server is "host:port" (e.g. "10.0.0.1:6388", "[::1]:6388") or a [host, port] pair (e.g. ["10.0.0.1", 6388])';

/** A host name never holds a control character or any Unicode whitespace (as `validate.ts` `checkHost`). */
const NOT_IN_HOST = /[\u0000-\u0020\u007f\s]/u;

/** A value as a message shows a bad server: strings quoted, arrays with their items. */
function show(value: unknown): string {
  if (typeof value === "string") return quote(value, 80);
  if (Array.isArray(value) && value.length <= 4) {
    return `[${value.map((v: unknown) => (typeof v === "string" || typeof v === "number" ? show(v) : describeValue(v))).join(", ")}]`;
  }
  if (typeof value === "number") return String(value);
  return describeValue(value);
}

/**
 * One server checked: a `"host:port"` string or a `[host, port]` array.
 *
 * @param value The server as the user gave it.
 * @param where What to call it in a message (`servers[1]`, `stats() server`).
 * @returns Its host (IPv6 without brackets) and port.
 * @throws InvalidArgumentError naming `where`, the value, what is wrong and the accepted forms.
 */
export function readServer(value: unknown, where: string): readonly [host: string, port: number] {
  const bad = (why: string): InvalidArgumentError =>
    new InvalidArgumentError(`${where} is ${show(value)}: ${why}; ${SERVER_FORMS}`);
  if (typeof value === "string") {
    const s = splitHostPort(value);
    if (!s.ok) {
      if (s.problem === "noPort") throw bad("it has no port (write host:port)");
      if (s.problem === "ipv6") throw bad("an IPv6 address goes in brackets, as [::1]:6388");
      if (s.problem === "brackets") throw bad("a bracketed IPv6 address is written [address]:port");
      throw bad("the host must not be empty and the port must be a whole number from 1 to 65535");
    }
    if (NOT_IN_HOST.test(s.host)) throw bad("the host must not contain whitespace or control characters");
    return [s.host, s.port];
  }
  if (Array.isArray(value)) {
    if (value.length !== 2) throw bad(`a [host, port] pair has 2 items, this has ${value.length}`);
    const [host, port]: unknown[] = value;
    if (typeof host !== "string" || host === "" || NOT_IN_HOST.test(host)) {
      throw bad(`the host must be a non-empty string without whitespace, got ${describeValue(host)}`);
    }
    if (host.startsWith("[")) throw bad("in a [host, port] pair an IPv6 address goes without brackets");
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw bad(`the port must be a whole number from 1 to 65535, got ${describeValue(port)}`);
    }
    return [host, port];
  }
  throw bad("not a server");
}

/**
 * Check a `servers` option and call `each` with every server's host and
 * port, in order (nothing is collected, so reading a list of pairs allocates
 * nothing).
 *
 * @param servers The option as given.
 * @param each Told each server.
 * @throws InvalidArgumentError for a list that is not a non-empty array, or a bad server in it.
 */
export function eachServer(servers: unknown, each: (host: string, port: number) => void): void {
  if (typeof servers === "string") {
    throw new InvalidArgumentError(
      `servers must be an array, got the string ${quote(servers, 80)}; for one server write [${quote(servers, 80)}]`,
    );
  }
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new InvalidArgumentError(
      `servers must be a non-empty array of servers, got ${describeValue(servers)}; ${SERVER_FORMS}`,
    );
  }
  for (let i = 0; i < servers.length; i++) {
    const s: unknown = servers[i];
    // The common case, a good [host, port] pair, without allocating.
    if (
      Array.isArray(s) &&
      s.length === 2 &&
      typeof s[0] === "string" &&
      s[0] !== "" &&
      s[0].charCodeAt(0) !== 0x5b &&
      !NOT_IN_HOST.test(s[0]) &&
      Number.isInteger(s[1]) &&
      s[1] >= 1 &&
      s[1] <= 65535
    ) {
      each(s[0], s[1]);
      continue;
    }
    const [host, port] = readServer(s, `servers[${i}]`);
    each(host, port);
  }
}

/**
 * Every server of a `servers` option, checked, as `[host, port]` pairs.
 *
 * @param servers The option as given.
 * @returns The pairs, in order.
 * @throws InvalidArgumentError as {@link eachServer}.
 */
export function readServers(servers: unknown): Array<readonly [host: string, port: number]> {
  const out: Array<readonly [string, number]> = [];
  eachServer(servers, (h, p) => out.push([h, p]));
  return out;
}
