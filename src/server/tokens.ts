/**
 * The tokens the dflockd-compatible server hands out: 32 lowercase hex
 * characters. Before v2.1 all of them come from a CSPRNG; from v2.1 the
 * first 16 are a big-endian uint64 fence, seeded from the wall clock in
 * nanoseconds and raised by one on every grant, and the last 16 are random.
 *
 * @module
 */

const HEX = "0123456789abcdef";

/** `n` random bytes from a CSPRNG, as lowercase hex. */
export function randomHex(n: number): string {
  const bytes = new Uint8Array(n);
  crypto.getRandomValues(bytes);
  let s = "";
  for (const b of bytes) s += HEX.charAt(b >> 4) + HEX.charAt(b & 15);
  return s;
}

/** A token of 16 random bytes (every generation before v2.1). */
export function randomToken(): string {
  return randomHex(16);
}

const MAX_U64 = (1n << 64n) - 1n;

/** v2.1's tokens: a fence that rises on every grant of one server, then 8 random bytes. */
export class FencedTokens {
  #last: bigint;

  /** @param seedNs Where the count starts (the first token carries one more); default the wall clock in nanoseconds. */
  constructor(seedNs: bigint = BigInt(Date.now()) * 1_000_000n) {
    this.#last = seedNs;
  }

  /** The next token. */
  next(): string {
    this.#last = (this.#last + 1n) & MAX_U64;
    return this.#last.toString(16).padStart(16, "0") + randomHex(8);
  }
}
