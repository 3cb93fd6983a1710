/**
 * withLock() makes the holding's AbortSignal only for a callback that can
 * read it. An arrow function with an empty parameter list cannot see its
 * arguments, so it gets none and no AbortController is made; every other
 * callback (a parameter, a rest parameter, a default, `arguments`, a bound
 * function) gets the real signal, which aborts when the holding ends.
 * AbortController constructions are counted by replacing the global with a
 * counting subclass, against a scripted peer that always grants.
 */
import { describe, expect, it } from "vitest";
import { readsArguments } from "../../src/cancel.ts";
import { LockError } from "../../src/errors.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { useCountedControllers } from "../support/counted-controllers.ts";

const made = useCountedControllers();

/** A lock that has connected once (a new connection makes a controller of its own, to cancel the connect). */
async function warmLock(): Promise<DistributedLock> {
  const lock = new DistributedLock({ key: "k", leaseTtlS: 30 });
  await lock.acquire();
  await lock.release();
  return lock;
}

describe("withLock() and its callback's signal", () => {
  it("makes no AbortController for an arrow function with no parameters", async () => {
    const lock = await warmLock();
    const before = made();
    for (let i = 0; i < 50; i++) {
      await lock.withLock(async () => {});
      expect(await lock.withLock(() => i)).toBe(i);
    }
    expect(made() - before).toBe(0);
    lock.close();
  });

  it("still gives such a callback a real signal through lock.signal, ended with the holding", async () => {
    const lock = await warmLock();
    let seen: AbortSignal | undefined;
    await lock.withLock(() => {
      seen = lock.signal;
      expect(seen?.aborted).toBe(false);
    });
    expect(seen).toBeInstanceOf(AbortSignal);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBeInstanceOf(LockError);
    lock.close();
  });

  const readers: Array<[string, (...a: never[]) => unknown]> = [
    ["a parameter", (signal: AbortSignal) => signal],
    ["an async parameter", async (signal: AbortSignal) => signal],
    ["a rest parameter", (...args: unknown[]) => args[0]],
    ["a default", (s: unknown = undefined) => s],
    [
      "arguments",
      function (this: unknown) {
        // biome-ignore lint/complexity/noArguments: the case under test
        return arguments[0];
      },
    ],
    [
      "a method named async",
      {
        async() {
          // biome-ignore lint/complexity/noArguments: the case under test
          return arguments[0];
        },
      }.async,
    ],
    ["a bound function", ((s: unknown) => s).bind(null)],
    [
      "a wrapper",
      (
        (inner: (s: unknown) => unknown) =>
        (...a: unknown[]) =>
          inner(a[0])
      )((s) => s),
    ],
  ];
  for (const [what, reader] of readers) {
    it(`gives a callback with ${what} a real, working signal, aborted when the holding ends`, async () => {
      const lock = await warmLock();
      const before = made();
      let during: { aborted: boolean; any: boolean; listened: boolean } | undefined;
      let heard = 0;
      const got = (await lock.withLock(async (signal) => {
        const s = (await (reader as (s: AbortSignal) => unknown)(signal)) as AbortSignal;
        s.addEventListener("abort", () => heard++);
        during = { aborted: s.aborted, any: !AbortSignal.any([s]).aborted, listened: s === lock.signal };
        return s;
      })) as AbortSignal;
      expect(made() - before).toBe(1);
      expect(got).toBeInstanceOf(AbortSignal);
      expect(during).toEqual({ aborted: false, any: true, listened: true });
      expect(got.aborted).toBe(true);
      expect(got.reason).toBeInstanceOf(LockError);
      expect(heard).toBe(1);
      lock.close();
    });
  }
});

describe("readsArguments()", () => {
  it("is false only for arrow functions with an empty parameter list", () => {
    const cannot = [() => 1, async () => {}, async () => {}, () => {}];
    for (const fn of cannot) expect(readsArguments(fn)).toBe(false);
    // Written out: the formatter would tidy these spacings away.
    const spaced = [" (  ) =>1", "async(\n)\t=> {}", "async  ()  =>  0"];
    for (const src of spaced) expect(readsArguments(new Function(`return ${src}`)())).toBe(false);
    const can: Array<(...args: never) => unknown> = [
      (s: unknown) => s,
      (...a: unknown[]) => a,
      (s = 1) => s,
      function named() {},
      async function anon() {},
      { async() {} }.async,
      new Function("return async (/* no signal */) => 0")(),
      new Function("return { async () {} }.async")(),
      (() => 0).bind(null),
      Math.max,
      new Proxy(() => 0, {}),
    ];
    for (const fn of can) expect(readsArguments(fn)).toBe(true);
  });
});
