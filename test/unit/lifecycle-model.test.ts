/**
 * Property: whatever a user and a server do, in any order and at any time, a
 * DistributedLock never throws anything but a LockError, never breaks its own
 * state machine, and after close() leaves no timer and no open connection
 * (once the shared pool's idle connections, which close() does not own, are
 * closed too).
 * Driven through the scripted in-memory peer with fake timers.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LockError } from "../../src/errors.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import { token, useScriptedRuntime } from "../support/scripted-peer.ts";

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
  ],
  enqueue: [`acquired ${token(3)} 2\n`, "queued\n", "queued\n", "error_already_enqueued\n", "error_max_waiters\n"],
  renew: ["ok 2\n", "ok 2\n", "ok 1\n", "ok 2 9\n", "error\n", "error_lease_expired\n", "garbage\n"],
  release: ["ok\n", "ok\n", "error\n", "error_draining\n"],
};
const FAMILY: Record<string, string> = {
  l: "grant",
  sl: "grant",
  w: "grant",
  sw: "grant",
  e: "enqueue",
  se: "enqueue",
  n: "renew",
  sn: "renew",
  r: "release",
  sr: "release",
};
/** How long the server takes to answer: at once, soon, later than the request timeout, or never. */
const DELAYS = [0, 0, 5, 300, 1600, -1];

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
      { numRuns: 3000, endOnFailure: true },
    );
  });
});
