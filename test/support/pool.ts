/**
 * Shared set-up of the pool tests (test/unit/pool*.test.ts): a fresh
 * scripted runtime and fake timers per test, the process-wide pool emptied
 * before and after, and connections shared at once (by default a server first
 * gets 8 of its own).
 */
import { afterEach, beforeEach, vi } from "vitest";
import { ConnectionPool, DEFAULT_SHARE_AFTER, sharedPool } from "../../src/pool.ts";
import { type PeerEnd, type ScriptedRuntime, token, useScriptedRuntime } from "./scripted-peer.ts";

/** Install the hooks; returns the current test's scripted runtime. */
export function usePoolTest(): () => ScriptedRuntime {
  let rt: ScriptedRuntime | undefined;
  beforeEach(() => {
    ConnectionPool.defaultShareAfter = 0;
    sharedPool.shareAfter = 0;
    sharedPool.closeIdle();
    rt = useScriptedRuntime();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    ConnectionPool.defaultShareAfter = DEFAULT_SHARE_AFTER;
    sharedPool.shareAfter = DEFAULT_SHARE_AFTER;
    sharedPool.closeIdle();
    vi.useRealTimers();
  });
  return () => rt as ScriptedRuntime;
}

/** Let fake time pass (0: just run what is due). */
export const tick = (ms = 0): Promise<unknown> => vi.advanceTimersByTimeAsync(ms);

/** Answer every request on `peer` the way a free dflockd v1.10 would (`ping` is an unknown command there). */
export function serve(peer: PeerEnd): void {
  servePings(peer, false);
}

/** As {@link serve}, on a server that answers `ping` (`pings`, as v1.14 and later) or not. */
export function servePings(peer: PeerEnd, pings: boolean): void {
  let n = 0;
  peer.onRequest = ([cmd]) => {
    if (cmd === "l" || cmd === "sl") peer.send(`ok ${token(++n)} 10\n`);
    else if (cmd === "e") peer.send(`acquired ${token(++n)} 10\n`);
    else if (cmd === "ping" && !pings) peer.send("error\n");
    else peer.send("ok\n");
  };
}
