/**
 * A try on a shared connection that a slow server leaves unanswered for
 * requestTimeoutMs: a caller with whole seconds left asks the same server
 * again (a cluster leader it was sent on to included), blocking, on a
 * connection of its own, and the try's late grant is given back; a caller
 * with none left is rejected. Through the scripted in-memory peer with fake
 * timers; sharing starts at 2 connections, so that an idle one is there too.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { serve, tick, usePoolTest } from "../support/pool.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

describe("a try on a shared connection that a slow server leaves unanswered", () => {
  /** A server that answers every request 6 s after it came (past requestTimeoutMs, 5 s), granting tokens from `first`. */
  function slow(peer: PeerEnd, first: number): void {
    let n = first;
    peer.onRequest = ([cmd]) => {
      const reply = cmd === "l" ? `ok ${token(++n)} 60\n` : "ok\n";
      setTimeout(() => peer.send(reply), 6_000);
    };
  }

  async function sharedThenSlow(acquireTimeoutS: number): Promise<[DistributedLock[], PeerEnd, PeerEnd]> {
    rt.onPeer = serve;
    sharedPool.shareAfter = 2;
    const locks = ["a", "b", "c"].map((key) => new DistributedLock({ key, leaseTtlS: 60, acquireTimeoutS }));
    expect(await Promise.all([locks[0]?.acquire(), locks[1]?.acquire()])).toEqual([true, true]);
    await locks[1]?.release();
    const [shared, idle] = rt.peers as [PeerEnd, PeerEnd];
    slow(shared, 100);
    slow(idle, 200);
    return [locks, shared, idle];
  }

  it("is asked again, blocking, on a connection of its own with the time left; its late grant is given back", async () => {
    const [locks, shared, idle] = await sharedThenSlow(30);
    try {
      const got = locks[2]?.acquire().catch((e: unknown) => e);
      await tick(5_000);
      // Given up on the shared connection after requestTimeoutMs; 25 whole seconds left.
      expect(idle.requests.at(-1)).toEqual(["l", "c", "25 60"]);
      await tick(1_000);
      // The try's late grant is released on the shared connection, ahead of the blocking request's grant.
      expect(shared.requests.filter((r) => r[1] === "c")).toEqual([
        ["l", "c", "0 60"],
        ["r", "c", token(101)],
      ]);
      await tick(5_000);
      expect(await got).toBe(true);
      expect(locks[2]?.token).toBe(token(201));
    } finally {
      for (const l of locks) l.close();
    }
  });

  /** Two servers, a follower that names the leader and the leader; "a" held on the leader, "c" sharded to the follower. */
  function cluster(acquireTimeoutS: number): [DistributedLock, DistributedLock] {
    const servers: [string, number][] = [
      ["127.0.0.1", 7801],
      ["127.0.0.1", 7802],
    ];
    rt.onPeer = (peer) => {
      if (peer.target.port === 7801) peer.onRequest = () => peer.send("error_not_leader 127.0.0.1:7802\n");
      else serve(peer);
    };
    const a = new DistributedLock({ key: "a", leaseTtlS: 60, servers, shardingStrategy: () => 1 });
    const c = new DistributedLock({ key: "c", leaseTtlS: 60, servers, shardingStrategy: () => 0, acquireTimeoutS });
    return [a, c];
  }

  it("after a cluster redirect, is asked of the leader again, not of the follower", async () => {
    const [a, c] = cluster(30);
    try {
      expect(await a.acquire()).toBe(true);
      const leader = rt.peers[0] as PeerEnd;
      leader.onRequest = undefined; // slow from now on
      const got = c.acquire().catch((e: unknown) => e);
      await tick();
      expect(leader.requests.at(-1)).toEqual(["l", "c", "0 60"]);
      await tick(5_000);
      expect(await got).toBe(true);
      const asked = rt.peers.map((p) => [
        p.target.port,
        p.requests.filter((r) => r[1] === "c").map((r) => r.join(" ")),
      ]);
      expect(asked).toEqual([
        [7802, ["l c 0 60"]],
        [7801, ["l c 30 60"]],
        [7802, ["l c 25 60"]],
      ]);
    } finally {
      a.close();
      c.close();
    }
  });

  it("after a cluster redirect, names the leader when the caller's time is spent", async () => {
    const [a, c] = cluster(3);
    try {
      expect(await a.acquire()).toBe(true);
      (rt.peers[0] as PeerEnd).onRequest = undefined; // slow from now on
      const got = c.acquire().catch((e: unknown) => e);
      await tick(5_000);
      // Found in review: the message named the server the key is sharded to, the follower.
      expect(await got).toMatchObject({
        code: "TIMEOUT",
        message: expect.stringMatching(/^127\.0\.0\.1:7802: no reply/),
      });
    } finally {
      a.close();
      c.close();
    }
  });

  it("rejects as before when the caller's time is spent by then", async () => {
    const [locks] = await sharedThenSlow(3);
    try {
      const got = locks[2]?.acquire().catch((e: unknown) => e);
      await tick(5_000);
      expect(await got).toMatchObject({
        code: "TIMEOUT",
        message: expect.stringContaining("shared with other holdings"),
      });
      expect(rt.peers[1]?.requests.map((r) => r[0])).toEqual(["l", "r"]);
    } finally {
      for (const l of locks) l.close();
    }
  });
});
