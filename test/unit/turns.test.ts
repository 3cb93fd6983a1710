/**
 * One instance shared by concurrent callers: withLock() turns, and the
 * per-call options of acquire, enqueue, wait and withLock. Against a scripted
 * peer, with fake timers.
 */
import { describe, expect, it, vi } from "vitest";
import { AcquireTimeoutError, InvalidArgumentError, LockError } from "../../src/errors.ts";
import { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import { useLockTest } from "../support/lock-test.ts";
import { type PeerEnd, token } from "../support/scripted-peer.ts";

const runtime = useLockTest();

const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

/** Answer every request as a free server would, numbering the grants. */
function serve(peer: PeerEnd): void {
  let n = 0;
  peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(++n)} 10\n` : "ok\n");
}

describe("concurrent withLock() on one instance", () => {
  it("takes turns in call order, each caller holding for its own callback", async () => {
    const lock = new DistributedLock({ key: "report" });
    const log: string[] = [];
    const run = (name: string) =>
      lock.withLock(async () => {
        log.push(`${name} in (${lock.token})`);
        await tick(5);
        log.push(`${name} out`);
        return name;
      });
    const all = Promise.all([run("a"), run("b"), run("c")]);
    const peer = await runtime().peer();
    serve(peer);
    expect(await all).toEqual(["a", "b", "c"]);
    expect(log).toEqual([`a in (${token(1)})`, "a out", `b in (${token(2)})`, "b out", `c in (${token(3)})`, "c out"]);
    expect(peer.requests.map((r) => r[0])).toEqual(["l", "r", "l", "r", "l", "r"]);
    expect(lock.state).toBe("released");
  });

  it("a caller whose callback throws passes the turn on", async () => {
    const lock = new DistributedLock({ key: "k" });
    const first = lock.withLock(() => {
      throw new Error("boom");
    });
    const second = lock.withLock(() => "ok");
    serve(await runtime().peer());
    await expect(first).rejects.toThrow("boom");
    expect(await second).toBe("ok");
  });

  it("a waiting caller's signal stops its wait; the others go on", async () => {
    const lock = new DistributedLock({ key: "k" });
    const controller = new AbortController();
    let release!: () => void;
    const first = lock.withLock(() => new Promise<void>((r) => (release = r)));
    const second = lock.withLock(() => "second", { signal: controller.signal }).catch((e: unknown) => e);
    const third = lock.withLock(() => "third");
    serve(await runtime().peer());
    await tick();
    controller.abort();
    expect(await second).toMatchObject({ code: "ABORTED" });
    release();
    await first;
    expect(await third).toBe("third");
  });

  it("an already-aborted signal is refused at once, even behind a busy turn", async () => {
    const lock = new DistributedLock({ key: "k" });
    let release!: () => void;
    const first = lock.withLock(() => new Promise<void>((r) => (release = r)));
    serve(await runtime().peer());
    await tick();
    const err = await lock.withLock(() => "never", { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ABORTED" });
    release();
    await first;
  });

  it("time waiting for the turn counts against timeoutS, and the server is asked for what is left", async () => {
    const lock = new DistributedLock({ key: "k" });
    let release!: () => void;
    const first = lock.withLock(() => new Promise<void>((r) => (release = r)));
    const late = lock.withLock(() => "late", { timeoutS: 2 }).catch((e: unknown) => e);
    const patient = lock.withLock(() => "patient", { timeoutS: 10 });
    const peer = await runtime().peer();
    serve(peer);
    await tick(2000);
    expect(await late).toBeInstanceOf(AcquireTimeoutError);
    await tick(1500);
    release();
    await first;
    expect(await patient).toBe("patient");
    // 3.5 s of the 10 were spent waiting: the server is asked for 6 whole seconds.
    expect(peer.requests[2]).toEqual(["l", "k", "6"]);
  });

  it("close() rejects the callers still waiting for their turn", async () => {
    const lock = new DistributedLock({ key: "k" });
    const first = lock.withLock(() => new Promise(() => {})).catch((e: unknown) => e);
    const second = lock.withLock(() => "never").catch((e: unknown) => e);
    serve(await runtime().peer());
    await tick();
    lock.close();
    expect(await second).toMatchObject({ code: "ABORTED" });
    expect(lock.state).toBe("released");
    void first;
  });

  it("acquire() on an instance that holds refuses, saying what to do", async () => {
    const lock = new DistributedLock({ key: "k" });
    const p = lock.acquire();
    serve(await runtime().peer());
    expect(await p).toBe(true);
    const err = (await lock.acquire().catch((e: unknown) => e)) as LockError;
    expect(err.code).toBe("BUSY");
    expect(err.message).toMatch(/already holds it: release\(\) it first/);
    expect(err.message).toMatch(/withLock\(\)/);
    await lock.release();
  });
});

describe("per-call options", () => {
  it("acquire({ timeoutS }) asks the server to wait that long", async () => {
    const lock = new DistributedLock({ key: "k", acquireTimeoutS: 30 });
    const p = lock.acquire({ timeoutS: 3 });
    const peer = await runtime().peer();
    expect(await peer.nextRequest(1)).toEqual(["l", "k", "3"]);
    peer.send("timeout\n");
    expect(await p).toBe(false);
  });

  it("withLock({ timeoutS: 0 }) tries once", async () => {
    const lock = new DistributedLock({ key: "k" });
    const p = lock.withLock(() => 1, { timeoutS: 0 }).catch((e: unknown) => e);
    const peer = await runtime().peer();
    expect(await peer.nextRequest(1)).toEqual(["l", "k", "0"]);
    peer.send("timeout\n");
    expect(await p).toBeInstanceOf(AcquireTimeoutError);
  });

  it("enqueue({ timeoutS }) bounds the whole call", async () => {
    const lock = new DistributedLock({ key: "k" });
    const p = lock.enqueue({ timeoutS: 1 }).catch((e: unknown) => e);
    const peer = await runtime().peer();
    await peer.nextRequest(1);
    await tick(1000);
    const err = (await p) as LockError;
    expect(err).toBeInstanceOf(LockError);
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toMatch(/timeoutS of 1 s/);
    expect(lock.state).toBe("released");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("enqueue({ timeoutS: 0 }) is refused: enqueue never waits, its timeout bounds the call", async () => {
    const lock = new DistributedLock({ key: "k" });
    await expect(lock.enqueue({ timeoutS: 0 })).rejects.toThrow(/must be at least 1/);
    expect(runtime().peers.length).toBe(0);
  });

  it("wait() takes timeoutS from its options, and refuses two different ones", async () => {
    const lock = new DistributedLock({ key: "k" });
    const e = lock.enqueue();
    const peer = await runtime().peer();
    await peer.nextRequest(1);
    peer.send("queued\n");
    expect(await e).toBe("queued");
    await expect(lock.wait(2, { timeoutS: 3 })).rejects.toBeInstanceOf(InvalidArgumentError);
    const w = lock.wait(undefined, { timeoutS: 4 });
    expect(await peer.nextRequest(2)).toEqual(["w", "k", "4"]);
    peer.send(`ok ${token(1)} 10\n`);
    expect(await w).toBe(true);
    lock.close();
  });

  it.each([
    [{ timeout: 5 }, /unknown option "timeout" \(did you mean "timeoutS"/],
    [{ timeoutMs: 5 }, /unknown option "timeoutMs"/],
    [{ signal: {} }, /signal must be an AbortSignal, got an object/],
    [{ timeoutS: "5" }, /timeoutS/],
    [{ timeoutS: 1.5 }, /timeoutS/],
    ["fast", /options must be an object, got the string "fast"/],
  ])("rejects %j before sending anything", async (options, message) => {
    const lock = new DistributedLock({ key: "k" });
    const o = options as never;
    for (const call of [
      () => lock.acquire(o),
      () => lock.enqueue(o),
      () => lock.withLock(() => {}, o),
      () => lock.wait(undefined, o),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(message);
    }
    expect(runtime().peers.length).toBe(0);
  });
});

describe("a wait without limit (timeoutS: Infinity)", () => {
  /** Longer than a runtime timer can measure (2^31 - 1 ms, 24.8 days): a clamped timer would have fired. */
  const PAST_ANY_TIMER = 30 * 86_400_000;
  /** Run the fake timers, one due time after the other, until 30 days have passed (or none is left). */
  async function pastAnyTimer(): Promise<void> {
    const end = performance.now() + PAST_ANY_TIMER;
    while (performance.now() < end && vi.getTimerCount() > 0) await vi.advanceTimersToNextTimerAsync();
  }

  it("acquire() sends one request that the server may answer weeks later, and nothing times out meanwhile", async () => {
    const lock = new DistributedLock({ key: "k", acquireTimeoutS: Infinity });
    const p = lock.acquire();
    const peer = await runtime().peer();
    expect(await peer.nextRequest(1)).toEqual(["l", "k", "2147483647"]);
    await pastAnyTimer();
    expect(peer.closedByClient).toBe(false);
    expect(lock.state).toBe("connecting");
    // A grant this long after the request is confirmed by a renewal before it counts (see needsConfirmation).
    peer.onRequest = ([cmd]) => peer.send(cmd === "n" ? "ok 10\n" : "");
    peer.send(`ok ${token(1)} 10\n`);
    expect(await p).toBe(true);
    // The same request, the same connection: the place in line was kept.
    expect(runtime().peers.length).toBe(1);
    expect(peer.requests.map((r) => r[0])).toEqual(["l", "n"]);
    lock.close();
  });

  it("a withLock() caller behind another one waits for its turn past any timer, then for the lock", async () => {
    // Renewals every half hour (an hour's lease and read timeout), not every 22 s: fewer steps to run through.
    const lock = new DistributedLock({ key: "k", serverReadTimeoutS: 3600 });
    let release!: () => void;
    const holding = new Promise<void>((inside) => {
      void lock.withLock(() => {
        inside();
        return new Promise<void>((r) => (release = r));
      });
    });
    const second = lock.withLock(() => "second", { timeoutS: Infinity });
    const peer = await runtime().peer();
    const replies: Record<string, string> = { l: "ok TOKEN 3600\n", n: "ok 3600\n", r: "ok\n" };
    peer.onRequest = ([cmd]) => peer.send((replies[cmd as string] ?? "").replace("TOKEN", token(peer.requests.length)));
    await holding;
    await pastAnyTimer();
    release();
    expect(await second).toBe("second");
    expect(peer.requests.filter((r) => r[0] === "l")).toEqual([
      ["l", "k", "10"],
      ["l", "k", "2147483647"],
    ]);
  });

  it("wait() and a semaphore send the same; enqueue({ timeoutS: Infinity }) is not bounded", async () => {
    const lock = new DistributedLock({ key: "k" });
    const e = lock.enqueue({ timeoutS: Infinity });
    const peer = await runtime().peer();
    await peer.nextRequest(1);
    peer.send("queued\n");
    expect(await e).toBe("queued");
    const w = lock.wait(Infinity);
    expect(await peer.nextRequest(2)).toEqual(["w", "k", "2147483647"]);
    await pastAnyTimer();
    peer.onRequest = ([cmd]) => peer.send(cmd === "n" ? "ok 10\n" : "");
    peer.send(`ok ${token(1)} 10\n`);
    expect(await w).toBe(true);
    lock.close();
    const sem = new DistributedSemaphore({ key: "s", limit: 2 });
    const s = sem.acquire({ timeoutS: Infinity });
    const semPeer = await runtime().peer();
    expect(await semPeer.nextRequest(1)).toEqual(["sl", "s", "2147483647 2"]);
    semPeer.send(`ok ${token(2)} 10\n`);
    expect(await s).toBe(true);
    sem.close();
  });

  it("refuses -Infinity and NaN, and names Infinity for a wait longer than an hour", async () => {
    expect(() => new DistributedLock({ key: "k", acquireTimeoutS: -Infinity })).toThrow(InvalidArgumentError);
    const lock = new DistributedLock({ key: "k" });
    for (const timeoutS of [Number.NaN, -Infinity]) {
      await expect(lock.acquire({ timeoutS })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(lock.acquire({ timeoutS: 7200 })).rejects.toThrow(/To wait without limit, pass Infinity/);
    expect(runtime().peers.length).toBe(0);
  });
});
