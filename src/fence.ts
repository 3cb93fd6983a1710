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

/** A dflockd v2.1+ token: 32 lower-case hex digits, the first 16 the fence. */
const FENCED_TOKEN = /^[0-9a-f]{32}$/;

/**
 * The fence dflockd v2.1 and later put in every token: the first 16 of its
 * 32 hex digits, a big-endian 64-bit number that rises with every grant from
 * that server. Compare fences of one key from the same server only: each
 * server seeds its own counter from its clock, so fences from two servers
 * (after a cluster failover, a redirect to another leader, or a changed
 * server list) do not compare. v1.x and v2.0 tokens have the
 * same shape but are random: a fence read from one of them means nothing,
 * which is why a lock gives it only with the `fenceFromToken` option.
 *
 * @param token A token as the server sent it (`lock.token`).
 * @returns The fence, or `undefined` when `token` is not exactly 32
 *   lower-case hex digits (the form v2.1 sends).
 * @example
 * ```ts
 * import { fenceOfToken } from "dflockd-client";
 *
 * fenceOfToken("17d3f0a1b2c3d4e50123456789abcdef"); // 1716980460237870309n
 * fenceOfToken("not-a-v2.1-token"); // undefined
 * ```
 */
export function fenceOfToken(token: string): bigint | undefined {
  return typeof token === "string" && FENCED_TOKEN.test(token) ? BigInt(`0x${token.slice(0, 16)}`) : undefined;
}

/**
 * `grant`, with the fence of its token as decimal text when `fromToken` is
 * set and the grant has no fence field of its own (the field, a later build's,
 * wins); else `grant` itself.
 */
export function withTokenFence<G extends { readonly token: string; readonly fence?: string }>(
  grant: G,
  fromToken: boolean,
): G {
  if (!fromToken || grant.fence !== undefined) return grant;
  const fence = fenceOfToken(grant.token);
  return fence === undefined ? grant : { ...grant, fence: fence.toString() };
}
