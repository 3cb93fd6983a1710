/**
 * Text rules of the dflockd double that mirror the Go server's standard
 * library: which characters split arguments (Go's `unicode.IsSpace`), which
 * integers parse (`strconv.Atoi`), and how `encoding/json` writes a string.
 * Keys are kept as "byte strings" (one char per byte, 0–255) so that any
 * byte sequence, valid UTF-8 or not, is stored exactly.
 */

const UTF8 = new TextDecoder("utf-8", { fatal: false });

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

/** Go's strconv.Atoi on a 64-bit machine; undefined where it fails. */
export function atoi(s: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = BigInt(s);
  if (n > 9223372036854775807n || n < -9223372036854775808n) return undefined;
  return Number(n);
}

const HEX = "0123456789abcdef";

/** A key (byte string) as Go's encoding/json writes a string, HTML-safe escapes included. */
export function goJsonString(key: string): string {
  const text = utf8(stringBytes(key));
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (cp === 0x0a) out += "\\n";
    else if (cp === 0x0d) out += "\\r";
    else if (cp === 0x09) out += "\\t";
    else if (cp < 0x20 || ch === "<" || ch === ">" || ch === "&" || cp === 0x2028 || cp === 0x2029) {
      out += `\\u${HEX[(cp >> 12) & 15]}${HEX[(cp >> 8) & 15]}${HEX[(cp >> 4) & 15]}${HEX[cp & 15]}`;
    } else out += ch;
  }
  return `${out}"`;
}
