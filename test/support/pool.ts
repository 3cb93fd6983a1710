/**
 * Shared set-up of the pool tests (test/unit/pool*.test.ts): a fresh
 * scripted runtime and fake timers per test, the process-wide pool emptied
 * before and after, and connections shared at once (by default a server first
 * gets 8 of its own).
 */
import { afterEach, beforeEach, vi } from "vitest";
import { ConnectionPool, DEFAULT_SHARE_AFTER, sharedPool } from "../../src/pool.ts";
import { DistributedLock } from "../../src/primitive.ts";
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

/** What {@link useGatedPoolTest} gives a test. */
export interface GatedPoolTest {
  /** The current test's scripted runtime. */
  rt(): ScriptedRuntime;
  /** The current test's server, a port of its own. */
  servers(): [string, number][];
  /** Let every connect waiting at the gate go on (later ones no longer wait). */
  open(): void;
  /** A lock on the current test's server, with a 10 s lease. */
  lock(key: string, options?: object): DistributedLock;
}

/**
 * {@link usePoolTest}, and for each test a server port of its own (counting
 * up from `firstPort`, so that no connection one test leaves is lent to the
 * next), answered by {@link serve}, with every connect held at a gate until
 * `open()`: for the tests of connections opened for sharing.
 */
export function useGatedPoolTest(firstPort: number): GatedPoolTest {
  const runtime = usePoolTest();
  let rt: ScriptedRuntime | undefined;
  let port = firstPort;
  let servers: [string, number][] = [];
  let release = (): void => {};
  beforeEach(() => {
    const current = runtime();
    rt = current;
    servers = [["127.0.0.1", ++port]];
    current.onPeer = serve;
    current.gate = new Promise<void>((resolve) => {
      release = () => {
        current.gate = undefined;
        resolve();
      };
    });
  });
  return {
    rt: () => rt as ScriptedRuntime,
    servers: () => servers,
    open: () => release(),
    lock: (key, options = {}) => new DistributedLock({ key, leaseTtlS: 10, servers, ...options }),
  };
}
