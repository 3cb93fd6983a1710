/**
 * Quoting a user's value (a key, a host, a path) for an error message, so
 * that what a message shows is exactly what the value holds, invisible and
 * look-alike characters included.
 *
 * @module
 */

/**
 * Code points a message must never show as they are, because they print as
 * nothing or as something that looks like a plain space: controls (C0, DEL,
 * C1), format characters (BOM, ZWJ, bidi controls, ...), every Unicode space
 * but U+0020, the line and paragraph separators, lone surrogate halves, and
 * the other default-ignorable or blank code points (variation selectors,
 * Hangul fillers, U+2800 BRAILLE PATTERN BLANK).
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zs}\p{Zl}\p{Zp}\p{Cs}\p{Default_Ignorable_Code_Point}\u2800]/u;
const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

function escapeChar(ch: string): string {
  const short = SHORT_ESCAPES[ch];
  if (short !== undefined) return short;
  if (ch === " " || !INVISIBLE.test(ch)) return ch;
  const cp = ch.codePointAt(0) as number;
  return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, "0")}`;
}

/**
 * Quote a user value (a key, a token, a host) for an error message, so that
 * what the message shows is what the value holds. A string comes back in
 * double quotes with `"` and `\` escaped, `\n`, `\r`, `\t` in short form, and
 * every other control character, Unicode space other than U+0020, format
 * character (BOM, ZWJ, ...), line or paragraph separator, lone surrogate and
 * other invisible code point as a `\u00a0`-style escape (`\u{e0001}` above
 * U+FFFF). Strings longer than `maxChars` code points are cut, and say how
 * long they were. Other values are described by their type or value (`42`,
 * `undefined`, `an object`). Never pass a secret.
 *
 * @param value The value to show.
 * @param maxChars Most code points shown (default 200).
 * @returns The quoted, escaped text.
 * @example
 * ```ts
 * import { quote } from "./quote.ts";
 *
 * quote("a\u00a0b"); // "a\u00a0b" (the escape, not a space)
 * quote("a b"); // "a b"
 * quote(42); // 42
 * ```
 */
export function quote(value: unknown, maxChars = 200): string {
  if (typeof value !== "string") {
    if (value === null) return "null";
    if (typeof value === "function") return "a function";
    if (typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
    return String(value);
  }
  const chars = Array.from(value);
  const shown = chars.length > maxChars ? chars.slice(0, maxChars) : chars;
  const text = `"${shown.map(escapeChar).join("")}"`;
  return shown === chars ? text : `${text}... (${chars.length} characters in all)`;
}
