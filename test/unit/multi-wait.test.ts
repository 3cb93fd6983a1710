/**
 * `holdAll()` without limit (`timeoutS: Infinity`, the command line's
 * `--wait` with several keys): no timer of its own ends the wait, not even
 * after a runtime timer's longest delay (2^31 - 1 ms).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { HeldLock } from "../../src/held.ts";
import { holdAll, type MultiHost } from "../../src/multi.ts";
import type { DistributedPrimitive } from "../../src/primitive.ts";
import { useScriptedRuntime } from "../support/scripted-peer.ts";

beforeEach(() => {
  useScriptedRuntime();
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("holdAll() with timeoutS: Infinity", () => {
  it("waits past 2^31 - 1 ms, asking each key to wait without limit", async () => {
    const asked: number[] = [];
    const grant: Array<() => void> = [];
    const make = (key: string): DistributedPrimitive =>
      ({
        hold: ({ timeoutS, signal }: { timeoutS: number; signal: AbortSignal }) => {
          asked.push(timeoutS);
          return new Promise<HeldLock>((resolve, reject) => {
            signal.addEventListener("abort", () => reject(signal.reason), { once: true });
            grant.push(() =>
              resolve({ key, fence: undefined, leaseTtl: 30, signal: new AbortController().signal } as HeldLock),
            );
          });
        },
      }) as unknown as DistributedPrimitive;
    const host: MultiHost = {
      acquireTimeoutS: 10,
      lockOptionKeys: new Set(),
      serverIndex: () => 0,
      make,
    };
    let outcome: unknown = "pending";
    const call = holdAll(host, ["a", "b"], { timeoutS: Number.POSITIVE_INFINITY }).then(
      (h) => (outcome = h.locks.map((l) => l.key)),
      (err: unknown) => (outcome = err),
    );
    await vi.advanceTimersByTimeAsync(2 ** 31 + 1000);
    expect(outcome).toBe("pending");
    grant[0]?.();
    await vi.advanceTimersByTimeAsync(2 ** 31 + 1000);
    expect(outcome).toBe("pending");
    grant[1]?.();
    await call;
    expect(outcome).toEqual(["a", "b"]);
    expect(asked).toEqual([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
  });
});
