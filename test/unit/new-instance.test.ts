/**
 * A new instance per operation costs what its options check must, and the
 * parts an operation may not need are made when first needed: the turns of
 * concurrent withLock()/hold() callers are made by the first of them (an
 * acquire() takes no turn), and a holding's AbortController only when its
 * signal is read; servers configured like an earlier instance's are checked
 * but their targets not built again, and those of the instance made last not
 * even checked again; and an instance a client object makes with no options
 * of its own takes the client's settings as checked at its construction.
 * Constructions are counted by wrapping the classes, against a scripted peer
 * that always grants.
 */
import { describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import type { LockHooks } from "../../src/hooks.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { useCountedControllers } from "../support/counted-controllers.ts";

const made = vi.hoisted(() => ({ turns: 0 }));

vi.mock("../../src/turns.ts", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../src/turns.ts")>();
  class CountingTurns extends original.Turns {
    constructor() {
      super();
      made.turns++;
    }
  }
  return { ...original, Turns: CountingTurns };
});

const controllers = useCountedControllers();

describe("a new instance per operation", () => {
  it("makes no turns and no AbortController for acquire, release and close", async () => {
    // Warm: the first acquire opens the connection the others reuse (a connect has a controller of its own).
    const warm = new DistributedLock({ key: "k", leaseTtlS: 30 });
    await warm.acquire();
    await warm.release();
    warm.close();
    const before = { ...made, controllers: controllers() };
    for (let i = 0; i < 20; i++) {
      const lock = new DistributedLock({ key: "k", leaseTtlS: 30 });
      expect(await lock.acquire()).toBe(true);
      await lock.release();
      lock.close();
    }
    expect(made.turns - before.turns).toBe(0);
    expect(controllers() - before.controllers).toBe(0);
  });

  it("makes the turns once, at the first withLock(), and keeps them", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30 });
    const before = made.turns;
    expect(await lock.withLock(() => 1)).toBe(1);
    expect(made.turns - before).toBe(1);
    const [a, b] = await Promise.all([lock.withLock(() => "a"), lock.withLock(() => "b")]);
    expect([a, b]).toEqual(["a", "b"]);
    expect(made.turns - before).toBe(1);
    lock.close();
  });

  it("a close() with a caller waiting for its turn still rejects it", async () => {
    const lock = new DistributedLock({ key: "k", leaseTtlS: 30 });
    let finish: () => void = () => {};
    const first = lock.withLock(() => new Promise<void>((r) => (finish = r)));
    const second = lock.withLock(() => "never").catch((e: unknown) => e);
    await vi.waitFor(() => expect(lock.held).toBe(true));
    lock.close();
    expect(await second).toMatchObject({ code: "ABORTED" });
    finish();
    await first.catch(() => undefined);
  });
});

describe("the options check of a new instance", () => {
  it("builds no targets for servers configured like an earlier instance's (nothing frozen)", () => {
    const servers: Array<[string, number]> = [
      ["10.0.0.1", 7001],
      ["10.0.0.2", 7002],
    ];
    new DistributedLock({ key: "k", servers }).close();
    new DistributedLock({ key: "k", host: "10.0.0.3", port: 7003 }).close();
    const freeze = vi.spyOn(Object, "freeze");
    try {
      for (let i = 0; i < 10; i++) {
        new DistributedLock({ key: `k${i}`, servers: [...servers] }).close();
        new DistributedLock({ key: `k${i}`, host: "10.0.0.3", port: 7003 }).close();
      }
      expect(freeze).not.toHaveBeenCalled();
    } finally {
      freeze.mockRestore();
    }
  });

  it("checks nothing again, nor looks up the shared list, for the servers of the instance made last", () => {
    const servers = ["10.0.0.1:7001", ["10.0.0.2", 7002] as const];
    new DistributedLock({ key: "k", servers }).close();
    const lookup = vi.spyOn(Map.prototype, "get");
    try {
      for (let i = 0; i < 10; i++) new DistributedLock({ key: `k${i}`, servers }).close();
      expect(lookup).not.toHaveBeenCalled();
    } finally {
      lookup.mockRestore();
    }
  });

  it("reads the servers afresh each time: an array changed in between gives the new servers", () => {
    const servers: Array<[string, number]> = [["10.0.0.1", 7001]];
    expect(new DistributedLock({ key: "k", servers }).toJSON().server).toBe("10.0.0.1:7001");
    servers[0] = ["10.0.0.9", 7009];
    expect(new DistributedLock({ key: "k", servers }).toJSON().server).toBe("10.0.0.9:7009");
    servers[0][1] = 0;
    expect(() => new DistributedLock({ key: "k", servers })).toThrow(/port must be/);
  });
});

describe("an instance a client object makes with no options of its own", () => {
  /** Hooks whose every read is counted: a check of the options reads each one. */
  class CountedHooks {
    reads = 0;
    get acquired(): () => void {
      this.reads++;
      return () => {};
    }
  }

  it("takes the client's options as checked once: a lock or semaphore reads none of them again", () => {
    const hooks = new CountedHooks();
    const client = new DflockdClient({ servers: ["10.0.0.1:7001"], leaseTtlS: 7, hooks });
    try {
      const read = hooks.reads;
      expect(read).toBeGreaterThan(0);
      for (let i = 0; i < 5; i++) client.lock(`k${i}`).close();
      client.semaphore("s", 3).close();
      expect(hooks.reads).toBe(read);
      // Options of its own are merged with the client's as read then.
      client.lock("k", { acquireTimeoutS: 1 }).close();
      expect(hooks.reads).toBe(read);
    } finally {
      client.close();
    }
  });

  it("a client reads its options once: a hooks object changed later reaches none of its locks", async () => {
    const seen: string[] = [];
    const hooks: LockHooks = { acquired: (e) => seen.push(`then ${e.key}`) };
    const client = new DflockdClient({ servers: ["127.0.0.1:7901"], leaseTtlS: 10, hooks });
    try {
      hooks.acquired = (e) => seen.push(`later ${e.key}`);
      await client.lock("with-options", {}).withLock(() => {});
      await client.lock("without").withLock(() => {});
      expect(seen).toEqual(["then with-options", "then without"]);
    } finally {
      client.close();
    }
  });

  it("gets the client's settings, its own key and limit, and their checks", () => {
    const client = new DflockdClient({ servers: ["10.0.0.1:7001", "10.0.0.2:7002"], leaseTtlS: 7 });
    try {
      for (const key of ["a", "b", "c", "d"]) {
        expect(client.lock(key).toJSON()).toEqual(client.lock(key, {}).toJSON());
      }
      const sem = client.semaphore("s", 3);
      expect(sem.limit).toBe(3);
      expect(sem.toJSON()).toEqual(client.semaphore("s", 3, {}).toJSON());
      const thrown = (make: () => unknown): unknown => {
        try {
          make();
        } catch (err) {
          return err;
        }
        return undefined;
      };
      for (const [fast, merged] of [
        [() => client.lock(""), () => client.lock("", {})],
        [() => client.semaphore("s", 0), () => client.semaphore("s", 0, {})],
        [() => client.semaphore("", 0), () => client.semaphore("", 0, {})],
      ] as const) {
        const err = thrown(fast);
        expect(err).toBeInstanceOf(InvalidArgumentError);
        expect((err as Error).message).toBe((thrown(merged) as Error).message);
      }
    } finally {
      client.close();
    }
  });
});
