/**
 * How dflockd's Go reads and prints its settings, for `serve`'s flags and
 * `DFLOCKD_*` variables: Go's flag package reads an int flag with
 * `strconv.ParseInt(s, 0, 64)` (base prefixes, underscores), a bool flag with
 * `strconv.ParseBool`, while dflockd reads its variables with `strconv.Atoi`;
 * seconds become a `time.Duration` (int64 nanoseconds, wrapping), which
 * messages print with `Duration.String`.
 *
 * @module
 */

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;
const UINT64_MAX = 18446744073709551615n;

/** Digits of each base Go's base prefixes name. */
const DIGITS: Readonly<Record<number, RegExp>> = { 2: /^[01]$/, 8: /^[0-7]$/, 10: /^[0-9]$/, 16: /^[0-9a-fA-F]$/ };

/**
 * Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then `0x`, `0o`, `0b`
 * or a leading `0` (octal) or none (decimal), with single underscores between
 * digits or after a prefix.
 *
 * @returns The value, or why it is refused (Go's words: `parse error`, `value out of range`).
 */
export function parseFlagInt(s: string): bigint | "parse error" | "value out of range" {
  let rest = s;
  const negative = rest.startsWith("-");
  if (negative || rest.startsWith("+")) rest = rest.slice(1);
  let base = 10;
  let prefixed = false;
  if (/^0[xXbBoO]/.test(rest)) {
    base = { x: 16, b: 2, o: 8 }[(rest[1] as string).toLowerCase() as "x" | "b" | "o"];
    rest = rest.slice(2);
    prefixed = true;
  } else if (rest.length > 1 && rest.startsWith("0")) {
    base = 8;
    rest = rest.slice(1);
    prefixed = true;
  }
  const digit = DIGITS[base] as RegExp;
  // As strconv.ParseUint: digits are read first (an overflow is reported at once), the underscores judged after.
  let value = 0n;
  let sawDigit = false;
  for (const ch of rest) {
    if (ch === "_") continue;
    if (!digit.test(ch)) return "parse error";
    value = value * BigInt(base) + BigInt(Number.parseInt(ch, 16));
    if (value > UINT64_MAX) return "value out of range";
    sawDigit = true;
  }
  if (!sawDigit || !underscoresOk(rest, prefixed)) return "parse error";
  const signed = negative ? -value : value;
  return signed > INT64_MAX || signed < INT64_MIN ? "value out of range" : signed;
}

/** Go's underscoreOK: each `_` between two digits, or right after a base prefix and before a digit. */
function underscoresOk(rest: string, prefixed: boolean): boolean {
  let previous = prefixed ? "prefix" : "start";
  for (const ch of rest) {
    if (ch === "_") {
      if (previous === "start" || previous === "_") return false;
      previous = "_";
    } else previous = "digit";
  }
  return previous !== "_";
}

/** Go's `strconv.Atoi` (base 10 only): the value, or undefined where it fails. */
export function parseAtoi(s: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = BigInt(s);
  return n > INT64_MAX || n < INT64_MIN ? undefined : n;
}

/** Go's `strconv.ParseBool`; undefined where it fails. */
export function parseFlagBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return undefined;
}

/** `time.Duration(seconds) * time.Second`: int64 nanoseconds, wrapping. */
export function secondsToNanos(seconds: bigint): bigint {
  return BigInt.asIntN(64, seconds * 1_000_000_000n);
}

/** Go's `Duration.String()`: `1h0m0s`, `-2562047h47m16.709551616s`, `1.5ms`, `0s`. */
export function durationString(ns: bigint): string {
  if (ns === 0n) return "0s";
  const sign = ns < 0n ? "-" : "";
  const u = ns < 0n ? -ns : ns;
  const fraction = (n: bigint, digits: number): string => {
    const text = n.toString().padStart(digits, "0").replace(/0+$/, "");
    return text === "" ? "" : `.${text}`;
  };
  if (u < 1_000n) return `${sign}${u}ns`;
  if (u < 1_000_000n) return `${sign}${u / 1_000n}${fraction(u % 1_000n, 3)}µs`;
  if (u < 1_000_000_000n) return `${sign}${u / 1_000_000n}${fraction(u % 1_000_000n, 6)}ms`;
  const totalSeconds = u / 1_000_000_000n;
  const secs = `${totalSeconds % 60n}${fraction(u % 1_000_000_000n, 9)}s`;
  const minutes = totalSeconds / 60n;
  if (minutes === 0n) return `${sign}${secs}`;
  const hours = minutes / 60n;
  return hours === 0n ? `${sign}${minutes}m${secs}` : `${sign}${hours}h${minutes % 60n}m${secs}`;
}
