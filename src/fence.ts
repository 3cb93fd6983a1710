/**
 * Fencing tokens as numbers that order correctly. The server sends its fence
 * as decimal text, and text compares wrongly (`"100" < "99"`); a `bigint`
 * compares right at any size, where a `number` would lose precision past
 * 2^53.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/**
 * The fence the server sent, as a `bigint` that orders correctly: a later
 * holding of a key always has the greater fence. A resource that remembers
 * the greatest fence it has seen, and refuses a write that carries a smaller
 * one, is safe even from a holder that paused past its lease.
 *
 * @param fence The fence as the server sent it (`lock.fence`).
 * @returns Its value.
 * @throws InvalidArgumentError if `fence` is not a decimal number.
 * @example
 * ```ts
 * import { parseFence } from "dflockd-client";
 *
 * parseFence("100") > parseFence("99"); // true ("100" > "99" is false)
 * ```
 */
export function parseFence(fence: string): bigint {
  if (typeof fence !== "string" || !DECIMAL.test(fence)) {
    throw new InvalidArgumentError(`a fence is a decimal number, got ${JSON.stringify(String(fence)).slice(0, 40)}`);
  }
  return BigInt(fence);
}

/** `parseFence`, or `undefined` for no fence or one that is not a decimal number. */
export function fenceValueOf(fence: string | undefined): bigint | undefined {
  return fence !== undefined && DECIMAL.test(fence) ? BigInt(fence) : undefined;
}
