/**
 * Argument checks shared by the whole library. Each throws
 * {@link InvalidArgumentError} before any byte reaches the wire.
 *
 * @module
 */
import { InvalidArgumentError, quote } from "./errors.ts";
import { hostProblem, isPort, meantHostPort, URL_NOT_SERVER } from "./host.ts";

/** Longest line the server accepts, in UTF-8 bytes (the `\n` not counted). */
export const MAX_LINE_BYTES = 256;

/**
 * Largest timeout or lease, in seconds, the client accepts. It is the largest
 * whole number of seconds a runtime timer can measure in milliseconds.
 */
export const MAX_SECONDS = 2_147_483;

/** A UTF-16 surrogate half without its partner cannot be encoded as UTF-8. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** The only characters the server refuses in a key (an LF would also split the request into other lines). */
const NOT_IN_KEY = /[ \t\r\n]/;
const KEY_CHAR_NAMES: Readonly<Record<string, string>> = {
  " ": "a space",
  "\t": "a tab",
  "\r": "a carriage return (CR)",
  "\n": "a line feed (LF)",
};
/**
 * What Go's `strings.TrimSpace` strips (`unicode.IsSpace`, the Unicode
 * White_Space property): the server trims these off both ends of a secret.
 */
const GO_SPACE = "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const TRIMMED_BY_SERVER = new RegExp(`^${GO_SPACE}|${GO_SPACE}$`);

/** UTF-8 length of a well-formed string, without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Whether `s[from, to)` is non-empty and holds only printable ASCII without
 * the space (U+0021 to U+007E), the characters of tokens and of most keys. A
 * loop, cheaper than a regular expression on every request.
 */
export function isPrintableAscii(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/**
 * A lock or semaphore key, checked against exactly what the server refuses,
 * so that every key the server stores as written is accepted and every other
 * one is refused before a byte is sent: 1 to 256 UTF-8 bytes, no space, tab,
 * CR or LF, and well-formed Unicode (a lone surrogate would be sent as the
 * bytes of U+FFFD, a different key). Anything else goes, byte for byte: NUL
 * and other controls, DEL, Unicode spaces, BOM, line separators, as the Go
 * and Python clients send them.
 *
 * @param key The key as the user gave it.
 * @returns The same key.
 * @throws InvalidArgumentError naming the first reason, with the key quoted by {@link quote}.
 */
export function checkKey(key: unknown): string {
  if (typeof key !== "string") throw new InvalidArgumentError(`key must be a string, got ${describeValue(key)}`);
  if (isPrintableAscii(key, 0, key.length) && key.length <= MAX_LINE_BYTES) return key;
  if (key.length === 0) throw new InvalidArgumentError("key must not be empty");
  const bad = NOT_IN_KEY.exec(key);
  if (bad !== null) {
    throw new InvalidArgumentError(
      `key must not contain ${KEY_CHAR_NAMES[bad[0]]} (the server would refuse it), got ${quote(key)}`,
    );
  }
  const lone = LONE_SURROGATE.exec(key);
  if (lone !== null) {
    const unit = (lone[0].charCodeAt(0) as number).toString(16).toUpperCase();
    throw new InvalidArgumentError(
      `key must be well-formed Unicode: it holds a lone surrogate (U+${unit}), which UTF-8 cannot carry, got ${quote(key)}`,
    );
  }
  const bytes = utf8Length(key);
  if (bytes > MAX_LINE_BYTES) {
    throw new InvalidArgumentError(
      `key is ${bytes} UTF-8 bytes long; the server accepts at most ${MAX_LINE_BYTES}, got ${quote(key, 40)}`,
    );
  }
  return key;
}

/**
 * An `auth` secret the server will compare exactly as written: non-empty, no
 * CR or LF anywhere (they would end or alter its line), nothing at either end
 * that the server trims (Go's `strings.TrimSpace`: ASCII whitespace, U+0085,
 * U+00A0 and the other Unicode spaces, U+2028, U+2029), well-formed Unicode
 * and at most 256 UTF-8 bytes. Every other character is allowed, spaces
 * inside included. The messages never contain the secret, nor any part of it.
 *
 * @param secret The secret as the user gave it.
 * @returns The same secret.
 * @throws InvalidArgumentError saying what is wrong, without the secret.
 */
export function checkSecret(secret: unknown): string {
  if (typeof secret !== "string" || secret.length === 0) {
    throw new InvalidArgumentError("auth must be a non-empty string");
  }
  if (/[\r\n]/.test(secret)) {
    throw new InvalidArgumentError("auth must not contain a line break (CR or LF)");
  }
  if (TRIMMED_BY_SERVER.test(secret)) {
    throw new InvalidArgumentError(
      "auth must not start or end with whitespace (Unicode spaces included): the server strips it, and would compare a different secret",
    );
  }
  if (LONE_SURROGATE.test(secret)) {
    throw new InvalidArgumentError("auth must be well-formed Unicode (it holds a lone surrogate)");
  }
  if (utf8Length(secret) > MAX_LINE_BYTES) {
    throw new InvalidArgumentError(`auth must be at most ${MAX_LINE_BYTES} UTF-8 bytes`);
  }
  return secret;
}

/**
 * A value as a message should name it, with its type: `the string "60"`,
 * `the number 5000`, `null`, `an array`, `an object`.
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "string") return `the string ${quote(value, 60)}`;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") {
    return `the ${typeof value} ${String(value)}`;
  }
  if (Array.isArray(value)) return "an array";
  if (typeof value === "function") return "a function";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * Refuse an options object with a key the library does not know: a typo such
 * as `hots` or `timeout` would otherwise be ignored, and its default used.
 * Symbol keys are not looked at.
 *
 * @param what What the options are for, for the message (`"DistributedLock"`).
 * @param known Every key accepted.
 * @throws InvalidArgumentError naming the key, the closest known one, and the known ones.
 */
export function checkKnownKeys(what: string, options: object, known: ReadonlySet<string>): void {
  // for...in with an own-key test: no array per call (per-call options pass through here).
  for (const k in options) {
    if (known.has(k) || !Object.hasOwn(options, k)) continue;
    const near = closest(k, known);
    const hint = near === undefined ? "" : ` (did you mean ${JSON.stringify(near)}?)`;
    throw new InvalidArgumentError(
      `${what}: unknown option ${JSON.stringify(k)}${hint}; known options: ${[...known].join(", ")}`,
    );
  }
}

/** The known name nearest to `key` (case aside, at most a third of its letters changed), if any. */
export function closest(key: string, known: ReadonlySet<string>): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(k.length / 3)) + 1;
  for (const candidate of known) {
    const c = candidate.toLowerCase();
    const d = c.startsWith(k) || k.startsWith(c) ? 1 : editDistance(k, c);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Edit distance counting a swap of neighbours as one edit (short strings only: option names). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const up = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((d[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = best;
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** Longest token (or fence) accepted, in characters (all ASCII, so also bytes). */
export const MAX_TOKEN_CHARS = 256;

/** A token as the server issues them: 1..256 printable ASCII characters, no spaces. */
export function checkToken(token: unknown): string {
  if (typeof token !== "string" || token.length > MAX_TOKEN_CHARS || !isPrintableAscii(token, 0, token.length)) {
    throw new InvalidArgumentError(
      `token must be the string the server returned (printable ASCII, no spaces), got ${quote(token, 80)}`,
    );
  }
  return token;
}

/** A whole number of seconds in `[min, MAX_SECONDS]`. */
export function checkSeconds(what: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > MAX_SECONDS) {
    throw new InvalidArgumentError(
      `${what} must be a whole number of seconds from ${min} to ${MAX_SECONDS}, got ${describeValue(value)}`,
    );
  }
  return value;
}

/** A timeout in whole seconds, `0` meaning "try once". */
export function checkTimeout(what: string, value: unknown): number {
  return checkSeconds(what, value, 0);
}

/** An optional lease TTL in whole seconds (>= 1). */
export function checkLease(value: unknown): number | undefined {
  return value === undefined ? undefined : checkSeconds("leaseTtlS", value, 1);
}

/** A semaphore limit: a whole number >= 1. */
export function checkLimit(value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`limit must be a whole number >= 1, got ${describeValue(value)}`);
  }
  return value;
}

/** A finite number strictly between 0 and 1. */
export function checkRatio(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value >= 1) {
    throw new InvalidArgumentError(`renewRatio must be a number strictly between 0 and 1, got ${describeValue(value)}`);
  }
  return value;
}

/** A positive finite number of milliseconds. */
export function checkMillis(what: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > 2_147_483_647) {
    throw new InvalidArgumentError(`${what} must be a positive number of milliseconds, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Largest wait or lease, in seconds, that a lock's options accept: one hour.
 * A larger value is far more likely milliseconds given by mistake (`5000`
 * meant as 5 s would wait 83 minutes) than a real wish; a longer wait is a
 * loop of acquires, and a lease is renewed anyway.
 */
export const MAX_OPTION_SECONDS = 3600;

/**
 * Shortest time, in milliseconds, a timeout option accepts: less is more
 * likely seconds given by mistake (`5` meant as 5 s) than a real wish.
 */
export const MIN_OPTION_MILLIS = 50;

/** A seconds option of a lock: whole, from `min` to {@link MAX_OPTION_SECONDS}, with a hint for milliseconds. */
export function checkOptionSeconds(what: string, value: unknown, min: number): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= MAX_OPTION_SECONDS) return value;
  let hint = "";
  if (typeof value === "number" && value > MAX_OPTION_SECONDS) {
    const seconds = value / 1000;
    if (Number.isInteger(seconds) && seconds <= MAX_OPTION_SECONDS)
      hint = ` If you meant ${value} ms, pass ${seconds}.`;
    else if (/lease/i.test(what)) hint = " A lease is renewed in the background, so a shorter one holds as long.";
    else if (/read/i.test(what)) hint = " If the server's is longer, 3600 is safe: renewals only come sooner.";
    else hint = " To wait without limit, pass Infinity.";
  } else if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) {
    hint = ` Pass the number ${Number(value)}, not a string.`;
  }
  throw new InvalidArgumentError(
    `${what} is in whole seconds, from ${min} to ${MAX_OPTION_SECONDS} (one hour); got ${describeValue(value)}.${hint}`,
  );
}

/**
 * How long an acquire may wait: whole seconds as {@link checkOptionSeconds}
 * (from 0), or `Infinity` for no limit (one queued request, which keeps its
 * place in line however long it waits).
 */
export function checkWaitSeconds(what: string, value: unknown): number {
  return value === Number.POSITIVE_INFINITY ? value : checkOptionSeconds(what, value, 0);
}

/** A milliseconds option: at least {@link MIN_OPTION_MILLIS}, with a hint for seconds. */
export function checkOptionMillis(what: string, value: unknown): number {
  if (typeof value === "number" && value > 0 && value < MIN_OPTION_MILLIS) {
    throw new InvalidArgumentError(
      `${what} is in milliseconds, at least ${MIN_OPTION_MILLIS}; got ${describeValue(value)}. If you meant ${value} s, pass ${value * 1000}.`,
    );
  }
  return checkMillis(what, value);
}

/** The `safetyMarginMs` option: whole milliseconds, >= 0. */
export function checkMargin(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 2_147_483_647) {
    throw new InvalidArgumentError(
      `safetyMarginMs must be a whole number of milliseconds >= 0, got ${describeValue(value)}`,
    );
  }
  return value;
}

/** Largest `maxHoldS`: a year. A holding meant to last longer should not set one. */
export const MAX_HOLD_S = 31_536_000;

/**
 * The `maxHoldS` option: seconds, more than 0 (fractions allowed), at most
 * {@link MAX_HOLD_S}, with a hint for milliseconds and strings.
 */
export function checkMaxHoldS(value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value) && value > 0 && value <= MAX_HOLD_S) return value;
  let hint = "";
  if (typeof value === "number" && value > MAX_HOLD_S && value / 1000 <= MAX_HOLD_S) {
    hint = ` If you meant ${value} ms, pass ${value / 1000}.`;
  } else if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) {
    hint = ` Pass the number ${Number(value)}, not a string.`;
  }
  throw new InvalidArgumentError(
    `maxHoldS is in seconds, more than 0 and at most ${MAX_HOLD_S} (a year); got ${describeValue(value)}.${hint}`,
  );
}

/**
 * A host name or address, without its port (the deprecated `host` option,
 * `tls.serverName`): a non-empty string without whitespace, brackets or `/`,
 * and not with exactly one `:` (the check of `servers`' pairs, `host.ts`).
 * `takesServers`: the caller also takes `servers`, which a host written as
 * `host:port` is then pointed to.
 */
export function checkHost(value: unknown, name = "host", takesServers = false): string {
  const problem = typeof value === "string" ? hostProblem(value) : "empty";
  if (problem === undefined) return value as string;
  const bad = (why: string): InvalidArgumentError => new InvalidArgumentError(`${name} is ${quote(value, 80)}: ${why}`);
  if (problem === "brackets") throw bad('it must not contain "[" or "]" (an IPv6 address goes without them: "::1")');
  if (problem === "slash") throw bad(`it must not contain "/": ${URL_NOT_SERVER}`);
  if (problem === "colon") {
    const meant = name === "host" ? meantHostPort(value as string, undefined) : undefined;
    throw bad(
      meant === undefined
        ? 'it has one ":", and an IPv6 address has at least two'
        : `it looks like host:port: give host ${quote(meant[0])} and port ${meant[1]}${takesServers ? `, or servers: [${quote(`${meant[0]}:${meant[1]}`)}]` : ""}`,
    );
  }
  throw new InvalidArgumentError(`${name} must be a non-empty string without whitespace, got ${quote(value, 80)}`);
}

/** A TCP port: a whole number from 1 to 65535. */
export function checkPort(value: unknown): number {
  if (!isPort(value)) {
    throw new InvalidArgumentError(`port must be a whole number from 1 to 65535, got ${describeValue(value)}`);
  }
  return value;
}

/** An optional boolean option: `true`, `false` or absent (`false`). */
export function checkFlag(name: string, value: unknown): boolean {
  if (value === undefined || typeof value === "boolean") return value === true;
  throw new InvalidArgumentError(`${name} must be true or false, got ${describeValue(value)}`);
}
