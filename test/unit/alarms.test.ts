/**
 * The process's one timer for every holding's deadline (src/alarms.ts).
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Alarm, AlarmClock } from "../../src/alarms.ts";
import { useScriptedRuntime } from "../support/scripted-peer.ts";

beforeEach(() => {
  useScriptedRuntime();
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
});
afterEach(() => {
  vi.useRealTimers();
});

const at = (ms: number): number => performance.now() + ms;

describe("AlarmClock", () => {
  it("fires each alarm once, in deadline order, on one runtime timer", async () => {
    const clock = new AlarmClock();
    const fired: number[] = [];
    const alarms = [50, 10, 40, 20, 30].map((ms) => {
      const a = new Alarm(() => fired.push(ms));
      clock.set(a, at(ms));
      return a;
    });
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(25);
    expect(fired).toEqual([10, 20]);
    expect(alarms.filter((a) => a.armed)).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual([10, 20, 30, 40, 50]);
    expect(clock.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("cancelled alarms never fire; once none is set the timer lapses, and clearIfIdle() clears it", async () => {
    // As on a real runtime: under fake timers the clock would clear it at once (see below).
    const clock = new AlarmClock(() => true);
    const fire = vi.fn();
    const a = new Alarm(fire);
    const b = new Alarm(fire);
    clock.set(a, at(10));
    clock.set(b, at(20));
    clock.cancel(a);
    clock.cancel(a);
    expect(vi.getTimerCount()).toBe(1);
    clock.cancel(b);
    // Left to lapse: it fires once at its time, finds nothing, and is not armed again.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(fire).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
    clock.set(a, at(10));
    clock.cancel(a);
    clock.clearIfIdle();
    expect(vi.getTimerCount()).toBe(0);
    // Not while an alarm is set.
    clock.set(b, at(10));
    clock.clearIfIdle();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(10);
    expect(fire).toHaveBeenCalledTimes(1);
  });

  it("under fake timers the timer is cleared once no alarm is left: clearAllTimers() cannot strand a later alarm", async () => {
    const clock = new AlarmClock();
    const fire = vi.fn();
    const a = new Alarm(fire);
    clock.set(a, at(100));
    clock.cancel(a);
    expect(vi.getTimerCount()).toBe(0);
    // A test's afterEach: a timer left to lapse would be dropped here without the clock knowing.
    vi.clearAllTimers();
    clock.set(a, at(200));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fire).toHaveBeenCalledTimes(1);
  });

  it("on real timers, a loop of holdings that each end before the next starts arms one runtime timer", () => {
    vi.useRealTimers();
    const armed = vi.spyOn(globalThis, "setTimeout");
    const cleared = vi.spyOn(globalThis, "clearTimeout");
    try {
      // Made with the spies in place: a clock trusts a lapsing timer only of the setTimeout it was made with.
      const clock = new AlarmClock();
      const a = new Alarm(vi.fn());
      for (let i = 0; i < 100; i++) {
        clock.set(a, performance.now() + 5000);
        clock.cancel(a);
      }
      expect(armed).toHaveBeenCalledTimes(1);
      expect(cleared).not.toHaveBeenCalled();
      clock.clearIfIdle();
      expect(cleared).toHaveBeenCalledTimes(1);
    } finally {
      armed.mockRestore();
      cleared.mockRestore();
    }
  });

  it("a timer armed under fake timers is not trusted once they are gone (Bun's jest timers keep one setTimeout)", async () => {
    vi.useRealTimers();
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    let faking = true;
    // Like Bun's jest.useFakeTimers(): one function, marked with `clock` only while faking; a fake timer
    // dropped by useRealTimers() never fires.
    const setT = ((fn: () => void, ms: number) => (faking ? -1 : realSet(fn, ms))) as unknown as typeof setTimeout;
    Object.defineProperty(setT, "clock", { get: () => (faking ? {} : undefined) });
    const clearT = ((t: ReturnType<typeof setTimeout>) => {
      if ((t as unknown) !== -1) realClear(t);
    }) as typeof clearTimeout;
    globalThis.setTimeout = setT;
    globalThis.clearTimeout = clearT;
    try {
      const clock = new AlarmClock();
      const a = new Alarm(() => {});
      clock.set(a, performance.now() + 1);
      // useRealTimers() in an afterEach, before the lock is released.
      faking = false;
      clock.cancel(a);
      await new Promise<void>((resolve) => clock.set(new Alarm(resolve), performance.now() + 20));
    } finally {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    }
  });

  it("a real timer left to lapse is cleared with the real clearTimeout once fake timers are installed", async () => {
    vi.useRealTimers();
    const clock = new AlarmClock();
    const a = new Alarm(vi.fn());
    clock.set(a, performance.now() + 5000);
    clock.cancel(a);
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"], shouldClearNativeTimers: false });
      const fire = vi.fn();
      clock.set(new Alarm(fire), performance.now() + 100);
      await vi.advanceTimersByTimeAsync(1000);
      expect(fire).toHaveBeenCalledTimes(1);
      // A fake clearTimeout given a native timer warns and leaves it armed.
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it("a loop of holdings that each end before the next starts arms one runtime timer, not one each", async () => {
    const clock = new AlarmClock(() => true);
    const a = new Alarm(vi.fn());
    const armed = vi.spyOn(globalThis, "setTimeout");
    const cleared = vi.spyOn(globalThis, "clearTimeout");
    try {
      for (let i = 0; i < 100; i++) {
        // A renewal due 5 s after each grant, cancelled by its release a moment later.
        clock.set(a, at(5000));
        clock.cancel(a);
        await vi.advanceTimersByTimeAsync(1);
      }
      expect(armed.mock.calls.length).toBeLessThanOrEqual(1);
      expect(cleared).not.toHaveBeenCalled();
    } finally {
      armed.mockRestore();
      cleared.mockRestore();
    }
  });

  it("moves an alarm earlier or later", async () => {
    const clock = new AlarmClock();
    const fired: string[] = [];
    const a = new Alarm(() => fired.push("a"));
    const b = new Alarm(() => fired.push("b"));
    clock.set(a, at(10));
    clock.set(b, at(20));
    clock.set(a, at(30));
    clock.set(b, at(5));
    await vi.advanceTimersByTimeAsync(6);
    expect(fired).toEqual(["b"]);
    await vi.advanceTimersByTimeAsync(20);
    expect(fired).toEqual(["b"]);
    await vi.advanceTimersByTimeAsync(10);
    expect(fired).toEqual(["b", "a"]);
  });

  it("a callback that throws does not stop the others", async () => {
    const clock = new AlarmClock();
    const thrown: unknown[] = [];
    const onError = (e: unknown): void => void thrown.push(e);
    process.on("uncaughtException", onError);
    try {
      const later = vi.fn();
      clock.set(
        new Alarm(() => {
          throw new Error("boom");
        }),
        at(10),
      );
      clock.set(new Alarm(later), at(10));
      await vi.advanceTimersByTimeAsync(10);
      expect(later).toHaveBeenCalledTimes(1);
      await vi.waitFor(() => expect(thrown).toHaveLength(1));
    } finally {
      process.off("uncaughtException", onError);
    }
  });

  it("arms anew when the timer functions were replaced since (fake timers reinstalled)", async () => {
    const clock = new AlarmClock();
    const x = vi.fn();
    const y = vi.fn();
    clock.set(new Alarm(x), at(100));
    // The timer armed above belongs to fake timers that are now gone: it will never fire.
    vi.useRealTimers();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    clock.set(new Alarm(y), at(200));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(x).toHaveBeenCalledTimes(1);
    expect(y).toHaveBeenCalledTimes(1);
  });

  it("matches a simple model under any sequence of sets, cancels and time passing", async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), id: fc.nat(5), ms: fc.nat(100) }),
      fc.record({ kind: fc.constant("cancel" as const), id: fc.nat(5) }),
      fc.record({ kind: fc.constant("pass" as const), ms: fc.nat(60) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        // An earlier run's clock may have left its timer to lapse.
        vi.clearAllTimers();
        // The timer lapses as on a real runtime, so that the model covers a lapsing timer too.
        const clock = new AlarmClock(() => true);
        const fired: number[] = [];
        const alarms = Array.from({ length: 6 }, (_, id) => new Alarm(() => fired.push(id)));
        const model = new Map<number, number>();
        const expected: number[] = [];
        let now = performance.now();
        for (const o of ops) {
          if (o.kind === "set") {
            clock.set(alarms[o.id] as Alarm, now + o.ms);
            model.set(o.id, now + o.ms);
          } else if (o.kind === "cancel") {
            clock.cancel(alarms[o.id] as Alarm);
            model.delete(o.id);
          } else {
            now += o.ms;
            const due = [...model].filter(([, t]) => t <= now).sort((x, y) => x[1] - y[1]);
            for (const [id] of due) {
              expected.push(id);
              model.delete(id);
            }
            await vi.advanceTimersByTimeAsync(o.ms);
            // Alarms due at the same moment may fire in either order.
            expect([...fired].sort()).toEqual([...expected].sort());
          }
          for (const [id, a] of alarms.entries()) expect(a.armed).toBe(model.has(id));
          // One timer while any alarm is set; with none, at most the one left to lapse.
          if (model.size > 0) expect(vi.getTimerCount()).toBe(1);
          else expect(vi.getTimerCount()).toBeLessThanOrEqual(1);
        }
        for (const a of alarms) clock.cancel(a);
      }),
      { numRuns: 300 },
    );
  });
});
