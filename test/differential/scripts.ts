/**
 * Request scripts that a real dflockd and the double must answer alike.
 * Timings are windows wide enough for a busy 2-core machine: a server passes
 * when its reply lands inside, and the two servers are compared on that.
 */
import type { Script } from "./runner.ts";
import { auth, authFile, authSilence, deadWaiter, fifo, limits, tlsScript } from "./scripts/connections.ts";
import { commands, edges, keys, malformed, numbers, pipelining, twoPhase } from "./scripts/requests.ts";
import { drain, drainReadTimeout } from "./scripts/shutdown.ts";
import { activity, collect, expiry, gc, lapsed, noAutoRelease, readTimeout } from "./scripts/time.ts";

/** Every script of the differential test, in the order they were recorded. */
export function scripts(): Script[] {
  return [
    commands,
    twoPhase,
    fifo,
    expiry,
    readTimeout,
    limits,
    malformed,
    keys,
    auth,
    authFile,
    lapsed,
    collect,
    deadWaiter,
    noAutoRelease,
    gc,
    edges,
    pipelining,
    tlsScript(),
    drain,
    drainReadTimeout,
    authSilence,
    activity,
    numbers,
  ];
}
