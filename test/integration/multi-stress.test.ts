/**
 * Many callers on overlapping sets of keys, against two dflockd servers: 8
 * concurrent callers in this process (four sharing one client, four with a
 * client each; half through `withLocks()`, half through `holdAll()` with
 * `await using`) take 3 to 5 of 7 keys (six locks and a semaphore of limit
 * 2, spread over both servers) 40 times each, in random order as given. In
 * every critical section no lock key has another owner and the semaphore has
 * at most 2 holders. A deadlock would show as an `AcquireTimeoutError`; the
 * budget is generous and none may occur.
 */
import { describe, expect, it } from "vitest";
import { AcquireTimeoutError, DflockdClient, type HeldLocks, type LockSpec } from "../support/client.ts";
import { seededRng } from "../support/runtime.ts";
import { key, useDflockds } from "./helpers.ts";

const servers = useDflockds(2);

const CALLERS = 8;
const ROUNDS = 40;
const SEM_LIMIT = 2;

describe("overlapping sets, many callers", () => {
  it(`${CALLERS} callers x ${ROUNDS} rounds of 3-5 keys: no deadlock, no overlap on any key`, async () => {
    const seed = Number(process.env.MULTI_STRESS_SEED ?? Date.now() % 1_000_000);
    const p = key("stress");
    const locks = ["a", "b", "c", "d", "e", "f"].map((c) => `${p}-${c}`);
    const sem = `${p}-sem`;
    const all: LockSpec[] = [...locks, { key: sem, limit: SEM_LIMIT }];
    const where = { servers: servers().map((s) => s.address) };
    const shared = new DflockdClient(where);
    const own = Array.from({ length: CALLERS / 2 }, () => new DflockdClient(where));

    const owner = new Map<string, number>();
    let semHolders = 0;
    let semMost = 0;
    let sections = 0;
    let keysTaken = 0;
    const overlaps: string[] = [];
    const errors: unknown[] = [];

    const enter = (who: number, specs: LockSpec[]): void => {
      for (const s of specs) {
        if (typeof s !== "string") {
          semHolders++;
          semMost = Math.max(semMost, semHolders);
          if (semHolders > SEM_LIMIT) overlaps.push(`${sem}: ${semHolders} holders`);
        } else if (owner.has(s)) overlaps.push(`${s}: caller ${who} inside while ${owner.get(s)} is`);
        else owner.set(s, who);
      }
    };
    const leave = (who: number, specs: LockSpec[]): void => {
      for (const s of specs) {
        if (typeof s !== "string") semHolders--;
        else if (owner.get(s) !== who) overlaps.push(`${s}: caller ${who} leaves, but ${owner.get(s)} owns it`);
        else owner.delete(s);
      }
    };
    /** The critical section: claim, let other callers run, check nobody else claimed, let go. */
    const section = async (who: number, specs: LockSpec[], signal: AbortSignal): Promise<void> => {
      enter(who, specs);
      await new Promise<void>((resolve) => setTimeout(resolve, 0));
      for (const s of specs) if (typeof s === "string" && owner.get(s) !== who) overlaps.push(`${s}: taken over`);
      if (signal.aborted) overlaps.push(`caller ${who}: a key was lost`);
      leave(who, specs);
      sections++;
      keysTaken += specs.length;
    };

    const caller = async (who: number): Promise<void> => {
      const rnd = seededRng(seed + who);
      const client = who < CALLERS / 2 ? shared : (own[who - CALLERS / 2] as DflockdClient);
      for (let round = 0; round < ROUNDS; round++) {
        // 3 to 5 of the 7 keys, in a random order (the call puts them in its own).
        const specs = [...all].sort(() => rnd() - 0.5).slice(0, 3 + Math.floor(rnd() * 3));
        try {
          if ((who + round) % 2 === 0) {
            await client.withLocks(specs, (signal) => section(who, specs, signal), { timeoutS: 20 });
          } else {
            await using held: HeldLocks = await client.holdAll(specs, { timeoutS: 20 });
            held.assertHeld();
            await section(who, specs, held.signal);
          }
        } catch (err) {
          errors.push(err);
          return;
        }
      }
    };

    const started = performance.now();
    try {
      await Promise.all(Array.from({ length: CALLERS }, (_, who) => caller(who)));
    } finally {
      shared.close();
      for (const c of own) c.close();
    }
    const tookS = (performance.now() - started) / 1000;
    console.log(
      `multi-stress (seed ${seed}): ${sections} acquisitions of ${keysTaken} keys in all by ${CALLERS} callers ` +
        `in ${tookS.toFixed(2)} s; semaphore peak ${semMost}/${SEM_LIMIT}`,
    );
    expect(errors.filter((e) => e instanceof AcquireTimeoutError)).toEqual([]);
    expect(errors).toEqual([]);
    expect(overlaps).toEqual([]);
    expect(sections).toBe(CALLERS * ROUNDS);
    expect(owner.size).toBe(0);
    expect(semMost).toBeGreaterThanOrEqual(1);
  });
});
