/**
 * Request arguments as the dflockd-compatible server reads them: the
 * commands and their shapes, keys, Go's integers, and seconds turned into
 * int64 nanoseconds that wrap (v1.10.0) or are refused past the limit
 * (later generations).
 *
 * @module
 */
import { parseAtoi as atoi } from "./goflag.ts";

/** The `s*` commands differ from their twins only in taking a limit (a lock's is 1). */
export const CMDS: Record<string, { sem: boolean; op: "l" | "e" | "w" | "r" | "n" }> = {
  l: { sem: false, op: "l" },
  e: { sem: false, op: "e" },
  w: { sem: false, op: "w" },
  r: { sem: false, op: "r" },
  n: { sem: false, op: "n" },
  sl: { sem: true, op: "l" },
  se: { sem: true, op: "e" },
  sw: { sem: true, op: "w" },
  sr: { sem: true, op: "r" },
  sn: { sem: true, op: "n" },
};

/** The longest request line the server takes, in bytes, without its `\n`. */
export const MAX_LINE_BYTES = 256;

/** The largest number of seconds later builds take (int64 nanoseconds). */
export const MAX_SECONDS = 9_223_372_036n;

/** Seconds as Go's `time.Duration(n) * time.Second`: int64 nanoseconds, wrapping. */
export function nanos(seconds: bigint): bigint {
  return BigInt.asIntN(64, seconds * 1_000_000_000n);
}

/**
 * Whole seconds of `ns` as dflockd writes them: `int(d.Seconds())`, through a
 * float64 that can round up (`l`, `sl`, `n`, `sn`), or `int(d / time.Second)`
 * (`e`, `se`, `w`).
 */
export function wholeSeconds(ns: bigint, viaFloat: boolean): number {
  const sec = ns / 1_000_000_000n;
  return viaFloat ? Math.trunc(Number(sec) + Number(ns % 1_000_000_000n) / 1e9) : Number(sec);
}

/** The longest `auth` argument line of v1.15+, in bytes. */
export const MAX_AUTH_LINE_BYTES = 64 * 1024;

/** A key as dflockd takes it: 1 to 256 bytes, no space, tab, CR or LF. */
export function validKey(key: Uint8Array): boolean {
  if (key.length === 0 || key.length > MAX_LINE_BYTES) return false;
  for (const b of key) if (b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a) return false;
  return true;
}

/** Between `min` and `max` integers, each as Go's strconv.Atoi takes them. */
export function parseInts(args: string[], min: number, max: number): (bigint | undefined)[] | undefined {
  if (args.length < min || args.length > max) return undefined;
  const out: (bigint | undefined)[] = [];
  for (const a of args) {
    const n = atoi(a);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}
