/**
 * Shared set-up of the unit tests of a lock's life against a scripted peer: a
 * fresh scripted runtime and fake timers per test, the process-wide pool
 * emptied before and after.
 */
import { afterEach, beforeEach, vi } from "vitest";
import { sharedPool } from "../../src/pool.ts";
import { type ScriptedRuntime, useScriptedRuntime } from "./scripted-peer.ts";

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
