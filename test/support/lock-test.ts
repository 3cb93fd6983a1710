/**
 * Shared set-up of the unit tests of a lock's life against a scripted peer: a
 * fresh scripted runtime and fake timers per test, the process-wide pool
 * emptied before and after.
 */
import { afterEach, beforeEach, expect, vi } from "vitest";
import { sharedPool } from "../../src/pool.ts";
import type { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import { type PeerEnd, type ScriptedRuntime, token, useScriptedRuntime } from "./scripted-peer.ts";

/** Install the hooks; returns the current test's scripted runtime. */
export function useLockTest(): () => ScriptedRuntime {
  let rt: ScriptedRuntime | undefined;
  beforeEach(() => {
    sharedPool.closeIdle();
    rt = useScriptedRuntime();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    sharedPool.closeIdle();
    vi.useRealTimers();
  });
  return () => rt as ScriptedRuntime;
}

/** Advance the fake timers (and with them the clock) by `ms`, running what falls due. */
export const tick = (ms = 0): Promise<unknown> => vi.advanceTimersByTimeAsync(ms);

/** Run `fn` after `depth` microtask turns; resolves once it has run. For races at every point of a continuation. */
export function later(depth: number, fn: () => void): Promise<void> {
  return new Promise((resolve) => {
    const step = (d: number): void => {
      if (d === 0) {
        fn();
        resolve();
      } else queueMicrotask(() => step(d - 1));
    };
    step(depth);
  });
}

/** Acquire `lock` on the next peer of `rt`, granted at once for `lease` seconds; returns the peer. */
export async function grantedOn(
  rt: ScriptedRuntime,
  lock: DistributedLock | DistributedSemaphore,
  lease = 10,
): Promise<PeerEnd> {
  const p = lock.acquire();
  const peer = await rt.peer();
  await peer.nextRequest(1);
  peer.send(`ok ${token(1)} ${lease}\n`);
  expect(await p).toBe(true);
  return peer;
}

/** Move the monotonic clock by `ms` without running any timer: a pause (GC, a blocked loop, SIGSTOP). */
export function pause(ms: number): void {
  const t = performance.now();
  vi.spyOn(performance, "now").mockReturnValue(t + ms);
}
