/**
 * Text rules of the dflockd-compatible server that mirror the Go server's standard
 * library: which characters split arguments (Go's `unicode.IsSpace`) and how
 * `encoding/json` writes a string (integers: goflag.ts).
 * Keys are kept as "byte strings" (one char per byte, 0–255) so that any
 * byte sequence, valid UTF-8 or not, is stored exactly.
 */

const UTF8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** Bytes as a byte string (one char per byte). */
export function byteString(bytes: Uint8Array): string {
  // Not TextDecoder("latin1"): the Encoding standard makes that windows-1252.
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i] as number);
  return s;
}

/** A byte string back to bytes. */
export function stringBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Decode as UTF-8, invalid sequences becoming U+FFFD (as Go's range over a string does). */
export function utf8(bytes: Uint8Array): string {
  return UTF8.decode(bytes);
}

/** Go's unicode.IsSpace. */
export function isGoSpace(cp: number): boolean {
  if (cp <= 0xff) return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  return (
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

/** Go's strings.Fields over a UTF-8 argument line. */
export function fields(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (const ch of text) {
    if (isGoSpace(ch.codePointAt(0) as number)) {
      if (cur !== "") out.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur !== "") out.push(cur);
  return out;
}

/** Go's strings.TrimSpace. */
export function trimSpace(text: string): string {
  const cps = [...text];
  let a = 0;
  let b = cps.length;
  while (a < b && isGoSpace((cps[a] as string).codePointAt(0) as number)) a++;
  while (b > a && isGoSpace((cps[b - 1] as string).codePointAt(0) as number)) b--;
  return cps.slice(a, b).join("");
}

const HEX = "0123456789abcdef";
const SHORT: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };

function u4(cp: number): string {
  return `\\u${HEX.charAt((cp >> 12) & 15)}${HEX.charAt((cp >> 8) & 15)}${HEX.charAt((cp >> 4) & 15)}${HEX.charAt(cp & 15)}`;
}

/** The code point of the valid UTF-8 sequence at `i`, and its length; `undefined` if none starts there. */
function decodeAt(b: Uint8Array, i: number): [number, number] | undefined {
  const b0 = b[i] as number;
  if (b0 < 0x80) return [b0, 1];
  const len = b0 >= 0xf0 && b0 <= 0xf4 ? 4 : b0 >= 0xe0 ? 3 : b0 >= 0xc2 && b0 <= 0xdf ? 2 : 0;
  if (len === 0 || b0 > 0xf4 || i + len > b.length) return undefined;
  let cp = b0 & (0xff >> (len + 1));
  for (let k = 1; k < len; k++) {
    const c = b[i + k] as number;
    if ((c & 0xc0) !== 0x80) return undefined;
    cp = (cp << 6) | (c & 0x3f);
  }
  const min = len === 2 ? 0x80 : len === 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
  return [cp, len];
}

/**
 * A key (byte string) as Go's encoding/json writes a string: HTML-safe
 * escapes, `\\b \\f \\n \\r \\t` short forms, and `\\ufffd` for each byte
 * that does not start valid UTF-8.
 */
export function goJsonString(key: string): string {
  const b = stringBytes(key);
  let out = '"';
  for (let i = 0; i < b.length; ) {
    const d = decodeAt(b, i);
    if (d === undefined) {
      out += "\\ufffd";
      i++;
      continue;
    }
    const [cp, len] = d;
    i += len;
    if (cp === 0x22) out += '\\"';
    else if (cp === 0x5c) out += "\\\\";
    else if (SHORT[cp] !== undefined) out += SHORT[cp];
    else if (cp < 0x20 || cp === 0x3c || cp === 0x3e || cp === 0x26 || cp === 0x2028 || cp === 0x2029) out += u4(cp);
    else out += String.fromCodePoint(cp);
  }
  return `${out}"`;
}
