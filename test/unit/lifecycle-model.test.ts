/**
 * Property: whatever a user and a server do, in any order and at any time, a
 * DistributedLock never throws anything but a LockError, never breaks its own
 * state machine, and after close() leaves no timer and no open connection
 * (once the shared pool's idle connections, which close() does not own, are
 * closed too).
 *
 * Then I1-I3 (ARCHITECTURE.md) on the real driver: locks of one client sharing
 * connections under random users and servers, judged by a LossWatch
 * (test/support/loss-watch.ts); and fixed scenarios for each rule.
 * Driven through the scripted in-memory peer with fake timers.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { LockError, LockLostError } from "../../src/errors.ts";
import { ConnectionPool, DEFAULT_SHARE_AFTER, sharedPool } from "../../src/pool.ts";
import { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import {
  DELAY_CHOICES,
  DELAYS,
  FAMILY,
  grant,
  loneHolding,
  scriptedServer,
  sharing,
  watched,
} from "../support/loss-scenarios.ts";
import { LossWatch } from "../support/loss-watch.ts";
import { type PeerEnd, token, useScriptedRuntime } from "../support/scripted-peer.ts";

afterEach(() => {
  vi.useRealTimers();
});

/** Plausible answers per command family; the script picks one per request (or none). */
const ANSWERS: Record<string, string[]> = {
  grant: [
    `ok ${token(1)} 2\n`,
    `ok ${token(2)} 2 77\n`,
    "timeout\n",
    "error_max_locks\n",
    "error_limit_mismatch\n",
    "ok x\n",
    "error_not_leader 127.0.0.1:6388\n",
  ],
  enqueue: [
    `acquired ${token(3)} 2\n`,
    "queued\n",
    "queued\n",
    "error_already_enqueued\n",
    "error_max_waiters\n",
    "error_not_leader\n",
  ],
  renew: [
    "ok 2\n",
    "ok 2\n",
    "ok 1\n",
    "ok 2 9\n",
    "error\n",
    "error_lease_expired\n",
    "garbage\n",
    "error_not_leader\n",
  ],
  release: ["ok\n", "ok\n", "error\n", "error_draining\n", "error_not_leader 10.0.0.9:6388\n"],
};
const answer = fc.record({ pick: fc.nat(50), delay: fc.nat(DELAYS.length - 1) });

const user = (name: string, weight: number) => ({ arbitrary: fc.constant(name), weight });
const op = fc.oneof(
  user("acquire", 4),
  user("enqueue", 2),
  user("wait", 2),
  user("release", 3),
  user("withLock", 1),
  user("close", 1),
  user("hangup", 1),
  user("unsolicited", 1),
  // Time steps around the renewal point (1 s for a 2 s lease) and the deadlines.
  {
    arbitrary: fc.record({
      tick: fc.oneof(fc.constantFrom(0, 6, 301, 999, 1000, 1001, 2000), fc.integer({ min: 0, max: 4000 })),
    }),
    weight: 6,
  },
);

describe("property: the lock life cycle under arbitrary interleavings", () => {
  it("only LockErrors, no broken transitions, nothing left after close()", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(op, { minLength: 1, maxLength: 40 }),
        fc.array(answer, { minLength: 40, maxLength: 40 }),
        async (semaphore, ops, answers) => {
          vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
          sharedPool.closeIdle();
          const rt = useScriptedRuntime();
          // The scripted server answers each request as the script says (in order, as dflockd does).
          let next = 0;
          rt.onPeer = (peer) => {
            let chain = Promise.resolve();
            peer.onRequest = (req) => {
              const a = answers[next++ % answers.length] as { pick: number; delay: number };
              const options = ANSWERS[FAMILY[req[0] as string] ?? "release"] as string[];
              const line = options[a.pick % options.length] as string;
              const delay = DELAYS[a.delay] as number;
              chain = chain.then(async () => {
                if (delay < 0) return new Promise<void>(() => {}); // never answers again
                await new Promise((r) => setTimeout(r, delay));
                peer.send(line);
              });
            };
          };
          const options = { key: "k", leaseTtlS: 2, acquireTimeoutS: 1, requestTimeoutMs: 1500 };
          const lock = semaphore ? new DistributedSemaphore({ ...options, limit: 2 }) : new DistributedLock(options);
          const outcomes: Array<Promise<unknown>> = [];
          const track = (p: Promise<unknown>): void => {
            outcomes.push(
              p.then(
                () => undefined,
                (e: unknown) => e,
              ),
            );
          };
          try {
            for (const o of ops) {
              const peer = rt.peers[rt.peers.length - 1];
              if (typeof o === "string") {
                if (o === "acquire") track(lock.acquire());
                else if (o === "enqueue") track(lock.enqueue());
                else if (o === "wait") track(lock.wait(1));
                else if (o === "release") track(lock.release());
                else if (o === "withLock") track(lock.withLock(async () => {}));
                else if (o === "close") lock.close();
                else if (o === "hangup") peer?.hangUp();
                else if (o === "unsolicited") peer?.send("error\n");
              } else {
                await vi.advanceTimersByTimeAsync(o.tick);
              }
              await vi.advanceTimersByTimeAsync(0);
              expect(["connecting", "queued", "held", "renewing", "releasing", "released", "lost"]).toContain(
                lock.state,
              );
            }
            lock.close();
            sharedPool.closeIdle();
            await vi.advanceTimersByTimeAsync(20_000);
            for (const r of await Promise.all(outcomes)) {
              if (r !== undefined) {
                expect(r).toBeInstanceOf(LockError);
                expect(String((r as Error).message)).not.toMatch(/internal error/);
              }
            }
            expect(lock.state).toBe("released");
            expect(vi.getTimerCount()).toBe(0);
            for (const p of rt.peers) expect(p.closedByClient || p.hungUp).toBe(true);
          } finally {
            vi.useRealTimers();
          }
        },
      ),
      { numRuns: 1000, endOnFailure: true },
    );
  });
});

// ---- I1 and I3 on the real driver: several locks of one client, sharing connections ----

const NAMES = ["a", "b", "c"] as const;
const CALLS = "acquire acquire acquire acquire enqueue wait release release close".split(" ");
const sharedOp = fc.oneof(
  { arbitrary: fc.record({ lock: fc.nat(NAMES.length - 1), call: fc.constantFrom(...CALLS) }), weight: 24 },
  { arbitrary: fc.record({ peer: fc.nat(5), fault: fc.constantFrom("hangup", "unsolicited") }), weight: 2 },
  { arbitrary: fc.record({ tick: fc.constantFrom(0, 1, 300, 1000, 1600, 2500) }), weight: 12 },
  // Rare: it ends the run's client (later calls fail at once).
  { arbitrary: fc.constant("clientClose" as const), weight: 1 },
);
const scripted = fc.record({ pick: fc.nat(50), delay: fc.nat(DELAY_CHOICES - 1) });

describe("property: I1 and I3 on the real driver, with connections shared by several locks", () => {
  it("every holding is told before its connection is closed, and nothing the user ended is reported lost", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(sharedOp, { minLength: 1, maxLength: 30, size: "max" }),
        fc.array(scripted, { minLength: 30, maxLength: 30 }),
        async (ops, answers) => {
          vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
          ConnectionPool.defaultShareAfter = 0;
          const watch = new LossWatch();
          const rt = scriptedServer(watch, answers);
          const client = new DflockdClient({ leaseTtlS: 2, acquireTimeoutS: 1, requestTimeoutMs: 1500 });
          const locks = NAMES.map((name, i) => {
            // "b" is held for at most 1.2 s: its maxHoldS ends holdings on connections the others share.
            const options = i === 1 ? { ...watch.options(name), maxHoldS: 1.2 } : watch.options(name);
            const lock = i === 2 ? client.semaphore(name, 2, options) : client.lock(name, options);
            watch.attach(name, lock);
            return lock;
          });
          const outcomes: Array<Promise<unknown>> = [];
          const track = (p: Promise<unknown>, release?: string): void => {
            const failed = (e: unknown): unknown => {
              if (release !== undefined) watch.releaseFailed(release, e);
              return e;
            };
            outcomes.push(p.then(() => undefined, failed));
          };
          try {
            for (const o of ops) {
              if (o === "clientClose") {
                watch.ending(undefined, "close");
                client.close();
              } else if ("tick" in o) await vi.advanceTimersByTimeAsync(o.tick);
              else if ("fault" in o) {
                const peer = rt.peers[o.peer % Math.max(1, rt.peers.length)];
                if (o.fault === "hangup") peer?.hangUp();
                else peer?.send("error\n");
              } else {
                const name = NAMES[o.lock] as string;
                const lock = locks[o.lock] as DistributedLock;
                if (o.call === "acquire" || o.call === "enqueue") watch.starting(name);
                if (o.call === "release" || o.call === "close") watch.ending(name, o.call);
                if (o.call === "acquire") track(lock.acquire());
                else if (o.call === "enqueue") track(lock.enqueue());
                else if (o.call === "wait") track(lock.wait(1));
                else if (o.call === "release") track(lock.release(), name);
                else lock.close();
              }
              await vi.advanceTimersByTimeAsync(0);
            }
            watch.checkHoldings();
            watch.ending(undefined, "close");
            client.close();
            sharedPool.closeIdle();
            await vi.advanceTimersByTimeAsync(20_000);
            for (const r of await Promise.all(outcomes)) if (r !== undefined) expect(r).toBeInstanceOf(LockError);
            watch.checkReleases();
            expect(watch.violations, watch.log.join(" ")).toEqual([]);
            expect(watch.foreign, watch.log.join(" ")).toEqual([]);
            // A loss is kept until release() or the next acquire reports it; everything else has ended.
            for (const lock of locks) expect(["released", "lost"]).toContain(lock.state);
            expect(vi.getTimerCount()).toBe(0);
          } finally {
            ConnectionPool.defaultShareAfter = DEFAULT_SHARE_AFTER;
            vi.useRealTimers();
          }
        },
      ),
      { numRuns: 400, endOnFailure: true },
    );
  });
});

// ---- The same rules in fixed scenarios (most fail on the code before the transition table) ----

const tick = (ms = 0): Promise<unknown> => vi.advanceTimersByTimeAsync(ms);
const fakeTimers = (): unknown => vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });

describe("I1: the holder is told before its connection is closed or given back", () => {
  afterEach(() => {
    ConnectionPool.defaultShareAfter = DEFAULT_SHARE_AFTER;
    sharedPool.closeIdle();
  });

  const LOSSES: ReadonlyArray<[string, number, (peer: PeerEnd) => Promise<unknown>]> = [
    ["the loss deadline passes with a renewal unanswered", 60_000, () => tick(3700)],
    ["the renewal is never answered (the loss deadline passes)", 1000, () => tick(4000)],
    ["the server sends a reply nobody asked for", 60_000, async (peer) => peer.send("error\n")],
  ];

  it.each(LOSSES)("a lone holding: %s", async (_, requestTimeoutMs, provoke) => {
    fakeTimers();
    const { rt, watch } = watched();
    const { lock, peer } = await loneHolding(rt, watch, 4, { requestTimeoutMs });
    await provoke(peer);
    await tick();
    expect(lock.state).toBe("lost");
    expect(watch.log).toEqual(["acquired:k", "signal:k", "onLost:k", "hook:k", "close:#0"]);
    expect(watch.violations).toEqual([]);
  });

  it("a refused renewal: told before the (sound) connection goes back to the pool", async () => {
    fakeTimers();
    const { rt, watch } = watched();
    const { peer } = await loneHolding(rt, watch, 4, {
      // Where the connection is when the holder is told: not yet back in the pool.
      onLost: (err) => {
        watch.log.push(`idle=${sharedPool.idle}`);
        watch.told("k", err);
      },
    });
    await tick(1850);
    peer.send("error_lease_expired\n");
    await tick();
    expect(watch.log).toEqual(["acquired:k", "signal:k", "idle=0", "onLost:k", "hook:k"]);
    expect(sharedPool.idle).toBe(1);
    expect(peer.closedByClient).toBe(false);
  });

  it("a connection shared by two holdings: one's deadline tells only it; the other is told before the close", async () => {
    fakeTimers();
    const { rt, watch } = watched();
    const { client, a, b, peer } = await sharing(rt, watch);
    // a's renewal (at 1.85 s) is never answered: a is lost at 3.7 s. The clock proves nothing about the
    // connection, so b (30 s lease) keeps it, and a's token is released behind the unanswered renewal.
    await tick(3700);
    expect([a.state, b.state]).toEqual(["lost", "held"]);
    expect(watch.log.slice(2).join(" ")).toBe("signal:a onLost:a hook:a");
    expect(peer.closedByClient).toBe(false);
    expect(peer.requests.at(-1)).toEqual(["r", "a", token(1)]);
    // Nothing is answered: b is lost at its own deadline, told before its connection closes.
    await tick(30_000);
    expect(b.state).toBe("lost");
    expect(watch.log.slice(2).join(" ")).toBe("signal:a onLost:a hook:a signal:b onLost:b hook:b close:#0");
    expect(watch.violations).toEqual([]);
    client.close();
  });
});

describe("I2: held, state and assertHeld() read the clock, whether or not a timer has run", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    sharedPool.closeIdle();
  });

  const READS: ReadonlyArray<[string, (lock: DistributedLock, held: { assertHeld(): void }) => void]> = [
    ["lock.held", (lock) => expect(lock.held).toBe(false)],
    ["lock.state", (lock) => expect(lock.state).toBe("lost")],
    ["lock.assertHeld()", (lock) => expect(() => lock.assertHeld()).toThrow(LockLostError)],
    ["HeldLock.assertHeld()", (_, held) => expect(() => held.assertHeld()).toThrow(LockLostError)],
  ];

  it.each(READS)("%s past the loss deadline reports the loss at once, signal aborted", async (_, read) => {
    // Timers are fake and never advanced; only the monotonic clock moves.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    let now = 1000;
    vi.spyOn(performance, "now").mockImplementation(() => now);
    const { rt, watch } = watched();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, ...watch.options("k") });
    watch.attach("k", lock);
    const p = lock.hold();
    const peer = await rt.peer();
    await grant(watch, peer, 1, token(1), 10);
    const held = await p;
    const signal = lock.signal as AbortSignal;
    // 10 s lease from 1000 ms, 500 ms margin: lost from 10 500 ms on.
    now = 10_499;
    expect(lock.held).toBe(true);
    now = 10_500;
    // The alarm for the deadline is still set: no timer has run.
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    read(lock, held);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(LockLostError);
    expect(watch.log).toEqual(["acquired:k", "signal:k", "onLost:k", "hook:k", "close:#0"]);
    expect(lock.state).toBe("lost");
    expect(() => lock.assertHeld()).toThrow(LockLostError);
    expect(watch.violations).toEqual([]);
    await held.release().catch(() => {});
    lock.close();
  });
});

describe("I3: no loss is reported for what the user ended", () => {
  afterEach(() => {
    ConnectionPool.defaultShareAfter = DEFAULT_SHARE_AFTER;
    sharedPool.closeIdle();
  });

  it("client.close() ends two holdings on one connection, and tells neither of a loss", async () => {
    fakeTimers();
    const { rt, watch } = watched();
    const { client, a, b, peer } = await sharing(rt, watch);
    watch.ending(undefined, "close");
    client.close();
    await tick(60_000);
    expect(watch.log.slice(2)).toEqual(["ended:a", "ended:b", "close:#0"]);
    expect([a.state, b.state]).toEqual(["released", "released"]);
    expect(peer.closedByClient).toBe(true);
    expect(watch.violations).toEqual([]);
  });

  it("close() of one holding on a shared connection gives it back and tells nobody; the other stays", async () => {
    fakeTimers();
    const { rt, watch } = watched();
    const { client, a, b, peer } = await sharing(rt, watch);
    watch.ending("a", "close");
    a.close();
    expect(await peer.nextRequest(3)).toEqual(["r", "a", token(1)]);
    peer.send("ok\n");
    await tick();
    expect([a.state, b.state]).toEqual(["released", "held"]);
    peer.hangUp();
    await tick();
    expect(watch.log.slice(2)).toEqual(["ended:a", "signal:b", "onLost:b", "hook:b"]);
    expect(watch.violations).toEqual([]);
    client.close();
  });

  it("a release() not confirmed in time: no onLost; the hook and signal get only what release() reports", async () => {
    fakeTimers();
    const { rt, watch } = watched();
    const { lock } = await loneHolding(rt, watch, 4, { requestTimeoutMs: 60_000 });
    watch.ending("k", "release");
    const released = lock.release().catch((err: unknown) => {
      watch.releaseFailed("k", err);
      return err;
    });
    await tick(3700);
    expect(await released).toBeInstanceOf(LockLostError);
    watch.checkReleases();
    expect(watch.log).not.toContain("onLost:k");
    expect(watch.violations).toEqual([]);
    expect(lock.state).toBe("released");
  });

  // Found by the property above: a release() still pending when close() left the shared connection rejected
  // with the error the connection was later closed with, another holding's LockLostError, and hooks.lost fired.
  it("a release() left pending by close() never gets another key's loss, nor fires hooks.lost", async () => {
    fakeTimers();
    const { rt, watch } = watched();
    const { client, b } = await sharing(rt, watch);
    watch.ending("b", "release");
    const released = b.release().catch((err: unknown) => watch.releaseFailed("b", err));
    await tick();
    watch.ending("b", "close");
    b.close();
    await tick(3700); // a is lost, and the connection closed with a's LockLostError
    await released;
    client.close();
    expect(watch.foreign).toEqual([]);
    expect(watch.violations).toEqual([]);
  });
});
