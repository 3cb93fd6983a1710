/**
 * Server addresses as the API takes them: `"host:port"` strings (an IPv6
 * address in brackets, `"[::1]:6388"`) and `[host, port]` pairs, checked and
 * turned into one form. The command line's `--servers` and `DFLOCKD_SERVERS`
 * are read by the same {@link splitHostPort}.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { hostProblem, isPort, meantHostPort, URL_NOT_SERVER } from "./host.ts";
import { quote } from "./quote.ts";
import { describeValue } from "./validate.ts";

/**
 * One server: `"host:port"` (an IPv6 address in brackets: `"[::1]:6388"`) or
 * a `[host, port]` pair. A plain array such as `["10.0.0.1", 6388]` whose type
 * is inferred as `(string | number)[]` is accepted too, and checked when the
 * option is read: the host a non-empty string without whitespace or brackets
 * (an IPv6 address, with at least two `:`, goes in a pair without them), the
 * port a whole number from 1 to 65535.
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
  /** `://` or another `/` in it: a URL, whose scheme or path does not belong in a server. */
  | "scheme"
  /**
   * `[` without its `]`, something other than `:port` after the `]`, or a `[`
   * or `]` left in the host (`"[[::1]:6388"`, `"a]:6388"`).
   */
  | "brackets"
  /** More than one `:` outside brackets: an IPv6 address, which needs them. */
  | "ipv6"
  /** In brackets, a host with one `:`, which no IPv6 address is (`"[a:b]:6388"`). */
  | "colon"
  /** A control character or whitespace in the host. */
  | "space"
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
  if (text.includes("://")) return { ok: false, problem: "scheme" };
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
  const bad = hostProblem(host);
  if (bad === "slash") return { ok: false, problem: "scheme" };
  if (bad === "brackets" || bad === "colon" || bad === "space") return { ok: false, problem: bad };
  if (port === undefined) {
    if (defaultPort === undefined) return { ok: false, problem: host === "" ? "form" : "noPort" };
    port = String(defaultPort);
  }
  const n = Number(port);
  if (bad === "empty" || !/^\d+$/.test(port) || n < 1 || n > 65535) return { ok: false, problem: "form" };
  return { ok: true, host, port: n };
}

/**
 * Why a `host:port` text is refused, in words, for the problems the API and
 * the command line word alike (the others they word each for itself).
 *
 * @param problem What {@link splitHostPort} found.
 * @param text The text it was given.
 * @returns The reason, without the text itself.
 */
export function hostPortReason(problem: Exclude<HostPortProblem, "ipv6" | "noPort" | "form">, text: string): string {
  if (problem === "scheme") {
    // The part after the scheme, up to a path, if that is a good host:port.
    const scheme = text.indexOf("://");
    const rest = scheme < 0 ? "" : (text.slice(scheme + 3).split("/")[0] as string);
    const s = splitHostPort(rest);
    return `${URL_NOT_SERVER}${s.ok ? ` (${quote(rest, 80)})` : ""}`;
  }
  if (problem === "brackets") return "brackets go only around an IPv6 address, written [address]:port";
  if (problem === "colon") return 'a host in brackets is an IPv6 address, which has at least two ":"';
  return "the host must not contain whitespace or control characters";
}

/** The accepted forms, as every message about a bad server ends. */
export const SERVER_FORMS =
  'a server is "host:port" (e.g. "10.0.0.1:6388", "[::1]:6388") or a [host, port] pair (e.g. ["10.0.0.1", 6388])';

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
    if (s.ok) return [s.host, s.port];
    if (s.problem === "noPort") throw bad("it has no port (write host:port)");
    if (s.problem === "ipv6") throw bad("an IPv6 address goes in brackets, as [::1]:6388");
    if (s.problem === "form") {
      throw bad("the host must not be empty and the port must be a whole number from 1 to 65535");
    }
    throw bad(hostPortReason(s.problem, value));
  }
  if (Array.isArray(value)) {
    if (value.length !== 2) throw bad(`a [host, port] pair has 2 items, this has ${value.length}`);
    const [host, port]: unknown[] = value;
    const problem = typeof host === "string" ? hostProblem(host) : "empty";
    if (problem === "brackets") {
      throw bad('the host must not contain "[" or "]": in a [host, port] pair an IPv6 address goes without brackets');
    }
    if (problem === "slash") throw bad(`the host must not contain "/": ${URL_NOT_SERVER}`);
    if (problem === "colon") {
      const meant = meantHostPort(host as string, port);
      throw bad(
        meant === undefined
          ? 'the host has one ":", and an IPv6 address has at least two'
          : `the host looks like host:port: write ${show(`${meant[0]}:${meant[1]}`)} or ${show(meant)}`,
      );
    }
    if (problem !== undefined) {
      throw bad(`the host must be a non-empty string without whitespace, got ${describeValue(host)}`);
    }
    if (!isPort(port)) throw bad(`the port must be a whole number from 1 to 65535, got ${describeValue(port)}`);
    return [host as string, port];
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
    // The common case, a good [host, port] pair, without allocating: the same checks as readServer's.
    if (
      Array.isArray(s) &&
      s.length === 2 &&
      typeof s[0] === "string" &&
      hostProblem(s[0]) === undefined &&
      isPort(s[1])
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
