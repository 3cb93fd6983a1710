/**
 * How idle connections are closed: never in a burst. dflockd scans its whole
 * key table on every disconnect, so a mass release that closed every
 * emptied connection at once stalled the server past the request timeout
 * (issue 19). Emptied connections are kept, lent again, and closed one at a
 * time: the surplus beyond `maxIdlePerServer` spaced so that it is gone
 * before the server's read timeout, never faster than
 * `maxIdleClosesPerSecond`; the rest when their time is up.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import { ConnectionPool, idleGuardMs } from "../../src/pool.ts";
import type { DistributedLock } from "../../src/primitive.ts";
import { serve, tick, usePoolTest } from "../support/pool.ts";
import type { ScriptedRuntime } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
  rt.onPeer = serve;
  // A connection each, as below the share threshold.
  ConnectionPool.defaultShareAfter = 1000;
});

const READ_MS = 23_000;
const LENDABLE_MS = READ_MS - idleGuardMs(READ_MS);
const closed = (): number => rt.peers.filter((p) => p.closedByClient).length;

/** `n` locks of `client`, each held on a connection of its own, then all released at once. */
async function massRelease(client: DflockdClient, n: number): Promise<DistributedLock[]> {
  const locks = Array.from({ length: n }, (_, i) => client.lock(`k${i}`));
  expect(await Promise.all(locks.map((l) => l.acquire()))).toEqual(locks.map(() => true));
  expect(rt.peers).toHaveLength(n);
  await Promise.all(locks.map((l) => l.release()));
  return locks;
}

/** Step through `ms` of fake time in 10 ms steps; the times (ms from now) at which closes happened. */
async function closesOver(ms: number): Promise<number[]> {
  const times: number[] = [];
  let seen = closed();
  for (let t = 10; t <= ms; t += 10) {
    await tick(10);
    for (const now = closed(); seen < now; seen++) times.push(t);
  }
  return times;
}

describe("closing idle connections", () => {
  it("a mass release closes nothing at once: the surplus goes one at a time, before the read timeout", async () => {
    const client = new DflockdClient({ maxIdlePerServer: 2, maxIdleClosesPerSecond: 10 });
    await massRelease(client, 12);
    // At most the first close of the surplus has happened; the old pool closed all ten at once.
    expect(closed()).toBeLessThanOrEqual(1);
    const times = await closesOver(LENDABLE_MS - 10);
    const all = closed();
    // The ten beyond maxIdle are gone before the server would cut them; the two kept are not.
    expect(all).toBe(10);
    for (let i = 1; i < times.length; i++) {
      // Never closer than 1000 / maxIdleClosesPerSecond = 100 ms, never further than a second.
      expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(100);
      expect((times[i] as number) - (times[i - 1] as number)).toBeLessThanOrEqual(1010);
    }
    // The two within maxIdle are closed when their time is up, 100 ms apart.
    const rest = await closesOver(1000);
    expect(closed()).toBe(12);
    expect((rest[1] as number) - (rest[0] as number)).toBeGreaterThanOrEqual(100);
    client.close();
  });

  it("the surplus is lent again until its turn comes: a new burst reuses it", async () => {
    const client = new DflockdClient({ maxIdlePerServer: 1, maxIdleClosesPerSecond: 10 });
    const locks = await massRelease(client, 8);
    await tick(1500);
    const open = 8 - closed();
    expect(open).toBeGreaterThan(1);
    expect(await Promise.all(locks.slice(0, open).map((l) => l.acquire()))).toEqual(
      locks.slice(0, open).map(() => true),
    );
    expect(rt.peers).toHaveLength(8);
    client.close();
    expect(closed()).toBe(8);
  });

  it("maxIdlePerServer 0 still closes each connection as it empties", async () => {
    const client = new DflockdClient({ maxIdlePerServer: 0 });
    await massRelease(client, 3);
    expect(closed()).toBe(3);
    client.close();
  });

  it("closeIdle() and client.close() close every idle connection at once, as asked", async () => {
    const client = new DflockdClient({ maxIdlePerServer: 1 });
    await massRelease(client, 5);
    client.close();
    expect(closed()).toBe(5);
  });

  it("maxIdleClosesPerSecond is checked", () => {
    for (const bad of [0, -1, Number.NaN, "5"]) {
      expect(() => new DflockdClient({ maxIdleClosesPerSecond: bad as number })).toThrow(InvalidArgumentError);
    }
    expect(() => new DflockdClient({ maxIdleClosesPerSecond: Number.POSITIVE_INFINITY }).close()).not.toThrow();
  });
});
