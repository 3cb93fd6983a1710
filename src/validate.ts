/**
 * Argument checks shared by the whole library. Each throws
 * {@link InvalidArgumentError} before any byte reaches the wire.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";

/** Longest line the server accepts, in UTF-8 bytes (the `\n` not counted). */
export const MAX_LINE_BYTES = 256;

/**
 * Largest timeout or lease, in seconds, the client accepts. It is the largest
 * whole number of seconds a runtime timer can measure in milliseconds.
 */
export const MAX_SECONDS = 2_147_483;

/** Rejects C0 controls, DEL, and every Unicode whitespace character. */
const FORBIDDEN = /[\u0000-\u0020\u007f\s]/u;
/** A UTF-16 surrogate half without its partner cannot be encoded as UTF-8. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

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

function word(what: string, value: unknown): string {
  if (typeof value !== "string") {
    throw new InvalidArgumentError(`${what} must be a string, got ${typeof value}`);
  }
  if (value.length === 0) throw new InvalidArgumentError(`${what} must not be empty`);
  if (FORBIDDEN.test(value)) {
    throw new InvalidArgumentError(
      `${what} must not contain whitespace or control characters: ${JSON.stringify(value)}`,
    );
  }
  if (LONE_SURROGATE.test(value)) {
    throw new InvalidArgumentError(`${what} is not well-formed Unicode (lone surrogate)`);
  }
  const bytes = utf8Length(value);
  if (bytes > MAX_LINE_BYTES) {
    throw new InvalidArgumentError(`${what} is ${bytes} UTF-8 bytes long; the limit is ${MAX_LINE_BYTES}`);
  }
  return value;
}

/** A lock or semaphore key: 1..256 UTF-8 bytes, no whitespace or control characters. */
export function checkKey(key: unknown): string {
  return word("key", key);
}

const TOKEN = /^[\x21-\x7e]{1,256}$/;

/** A token as the server issues them: 1..256 printable ASCII characters, no spaces. */
export function checkToken(token: unknown): string {
  if (typeof token !== "string" || !TOKEN.test(token)) {
    throw new InvalidArgumentError(
      `token must be the string the server returned (printable ASCII, no spaces), got ${JSON.stringify(token)}`,
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
  if (typeof value !== "string" || value.length === 0 || FORBIDDEN.test(value)) {
    throw new InvalidArgumentError(`host must be a non-empty string without whitespace, got ${JSON.stringify(value)}`);
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
