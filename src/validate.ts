/**
 * Argument checks shared by the whole library. Each throws
 * {@link InvalidArgumentError} before any byte reaches the wire.
 *
 * @module
 */
import { InvalidArgumentError, quote } from "./errors.ts";

/** Longest line the server accepts, in UTF-8 bytes (the `\n` not counted). */
export const MAX_LINE_BYTES = 256;

/**
 * Largest timeout or lease, in seconds, the client accepts. It is the largest
 * whole number of seconds a runtime timer can measure in milliseconds.
 */
export const MAX_SECONDS = 2_147_483;

/** A host name never holds a control character or any Unicode whitespace. */
const NOT_IN_HOST = /[\u0000-\u0020\u007f\s]/u;
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
  if (typeof key !== "string") throw new InvalidArgumentError(`key must be a string, got ${typeof key}`);
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
      `${what} must be a whole number of seconds from ${min} to ${MAX_SECONDS}, got ${String(value)}`,
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
    throw new InvalidArgumentError(`limit must be a whole number >= 1, got ${String(value)}`);
  }
  return value;
}

/** A finite number strictly between 0 and 1. */
export function checkRatio(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value >= 1) {
    throw new InvalidArgumentError(`renewRatio must be a number strictly between 0 and 1, got ${String(value)}`);
  }
  return value;
}

/** A positive finite number of milliseconds. */
export function checkMillis(what: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > 2_147_483_647) {
    throw new InvalidArgumentError(`${what} must be a positive number of milliseconds, got ${String(value)}`);
  }
  return value;
}

/** A host name or address: a non-empty string without whitespace. */
export function checkHost(value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || NOT_IN_HOST.test(value)) {
    throw new InvalidArgumentError(`host must be a non-empty string without whitespace, got ${quote(value, 80)}`);
  }
  return value;
}

/** A TCP port: a whole number from 1 to 65535. */
export function checkPort(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new InvalidArgumentError(`port must be a whole number from 1 to 65535, got ${String(value)}`);
  }
  return value;
}
