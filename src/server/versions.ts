/**
 * The released dflockd generations the server can answer as, and what each
 * changes on the wire. `1.10` is held to a real v1.10.0 by the differential
 * test; `1.16` and `2.1` are modelled from upstream's source and changelog
 * (v1.14 to v2.1), since no such binary can be built here.
 *
 * @module
 */

/**
 * A dflockd generation the test server can answer as (`startTestServer({ version })`, `serve --server-version`).
 *
 * @example
 * ```ts
 * import { type ServerVersion, startTestServer } from "dflockd-client/testing";
 *
 * const version: ServerVersion = "2.1";
 * await using server = await startTestServer({ version });
 * ```
 */
export type ServerVersion = "1.10" | "1.16" | "2.1";

/** Every {@link ServerVersion}, oldest first. */
export const SERVER_VERSIONS: readonly ServerVersion[] = ["1.10", "1.16", "2.1"];

/** The default: dflockd v1.10.0, the form checked against a real binary. */
export const DEFAULT_VERSION: ServerVersion = "1.10";

/** Whether `value` names a {@link ServerVersion}. */
export function isServerVersion(value: unknown): value is ServerVersion {
  return typeof value === "string" && (SERVER_VERSIONS as readonly string[]).includes(value);
}

/** The message for a value that names no version, `what` being the flag or option. */
export function versionProblem(what: string, value: unknown): string {
  const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
  return `${what} must be one of ${SERVER_VERSIONS.map((v) => JSON.stringify(v)).join(", ")} (got ${shown})`;
}

/** The switches, one per difference between generations (see ServerConfig for each). */
export interface VersionForms {
  ping: boolean;
  namespaces: boolean;
  secondsCap: boolean;
  longAuth: boolean;
  dropOnPeerClose: boolean;
  dropWaiters: boolean;
  draining: boolean;
  forgetSwept: boolean;
  signalChannels: boolean;
  tokenFence: boolean;
}

/**
 * What a generation changes, as the switches the table and session consult:
 * - v1.14: `ping`; lock and semaphore keys in separate namespaces.
 * - v1.15: auth lines up to 64 KiB; seconds past 9223372036 refused; a peer
 *   that closes while blocked in `l`/`w` leaves the queue at once; queued
 *   waiters and `e` state are cleaned up on disconnect even without
 *   auto-release.
 * - v1.16: `error_draining`, then a close, during a shutdown. An `e` grant
 *   swept before `w` collected it is forgotten (`w` says
 *   `error_not_enqueued`; v1.10.0 could hand out the dead token). `stats`
 *   lists pub/sub's `signal_channels` (v1.11 to v1.16).
 * - v2.0: pub/sub gone (no `signal_channels`).
 * - v2.1: the token carries a fence: its first 16 hex characters are a
 *   big-endian uint64, seeded from the wall clock, that rises on every grant.
 */
export function versionForms(version: ServerVersion): VersionForms {
  const newer = version !== "1.10";
  return {
    ping: newer,
    namespaces: newer,
    secondsCap: newer,
    longAuth: newer,
    dropOnPeerClose: newer,
    dropWaiters: newer,
    draining: newer,
    forgetSwept: newer,
    signalChannels: version === "1.16",
    tokenFence: version === "2.1",
  };
}
