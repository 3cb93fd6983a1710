/**
 * The hooks around `error_not_leader`, on the scripted in-memory peer with
 * fake timers: a release a follower answered so is neither a release nor a
 * loss, and every hook of a holding an acquisition was redirected for names
 * the leader that granted it, not the server the sharding picked (the
 * release and close() hooks read it before the connection is gone).
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { LockLostError } from "../../src/errors.ts";
import type { AbandonedEvent, LockEvent, LockHooks, LostEvent, WaitingEvent } from "../../src/hooks.ts";
import { NotLeaderError } from "../../src/leader.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { FakeRegistry, useFakeRegistry } from "../support/fake-registry.ts";
import { tick, usePoolTest } from "../support/pool.ts";
import { type ScriptedRuntime, token } from "../support/scripted-peer.ts";

useFakeRegistry();
const runtime = usePoolTest();
let rt: ScriptedRuntime;
let port = 7800;
let follower: number;
let leader: number;
beforeEach(() => {
  rt = runtime();
  follower = ++port;
  leader = ++port;
});

/** Hooks that record what they are told. */
function recorder(): {
  hooks: LockHooks;
  released: LockEvent[];
  lost: LostEvent[];
  waiting: WaitingEvent[];
  abandoned: AbandonedEvent[];
} {
  const r = { released: [] as LockEvent[], lost: [] as LostEvent[], waiting: [] as WaitingEvent[] };
  const abandoned: AbandonedEvent[] = [];
  const hooks: LockHooks = {
    released: (e) => r.released.push(e),
    lost: (e) => r.lost.push(e),
    waiting: (e) => r.waiting.push(e),
    abandoned: (e) => abandoned.push(e),
  };
  return { hooks, ...r, abandoned };
}

/**
 * The sharding picks the follower, which answers everything with
 * `error_not_leader` naming the leader; the leader grants `l`, queues `e`,
 * and answers `r` with `release` (default `ok`).
 */
function cluster(release = "ok\n"): void {
  rt.onPeer = (peer) => {
    peer.onRequest = ([cmd]) => {
      if (peer.target.port === follower) peer.send(`error_not_leader 127.0.0.1:${leader}\n`);
      else if (cmd === "l") peer.send(`ok ${token(1)} 10\n`);
      else if (cmd === "e") peer.send("queued\n");
      else if (cmd === "r") peer.send(release);
      else if (cmd === "n") peer.send("ok 10\n");
      else peer.send("ok\n");
    };
  };
}

function redirectedLock(hooks: LockHooks): DistributedLock {
  return new DistributedLock({
    key: "k",
    leaseTtlS: 10,
    servers: [
      ["127.0.0.1", follower],
      ["127.0.0.1", leader],
    ],
    shardingStrategy: () => 0,
    hooks,
  });
}

describe("a release answered error_not_leader", () => {
  it("tells neither released nor lost: nothing was released, and the lease runs out on the leader", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(1)} 10\n` : "error_not_leader 10.0.0.2:6388\n");
    };
    const r = recorder();
    const lock = new DistributedLock({ key: "k", servers: [["127.0.0.1", follower]], hooks: r.hooks });
    expect(await lock.acquire()).toBe(true);
    const err = await lock.release().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    await tick(0);
    expect(r.released).toEqual([]);
    expect(r.lost).toEqual([]);
    expect(lock.state).toBe("released");
  });
});

describe("the hooks of a holding granted by the leader an acquisition was sent on to name that leader", () => {
  const leaderName = (): string => `127.0.0.1:${leader}`;

  it("released, after release()", async () => {
    cluster();
    const r = recorder();
    const lock = redirectedLock(r.hooks);
    expect(await lock.acquire()).toBe(true);
    expect(lock.server).toBe(leaderName());
    await lock.release();
    expect(r.released).toEqual([{ key: "k", server: leaderName() }]);
  });

  it("released, after close()", async () => {
    cluster();
    const r = recorder();
    const lock = redirectedLock(r.hooks);
    expect(await lock.acquire()).toBe(true);
    lock.close();
    expect(r.released).toEqual([{ key: "k", server: leaderName() }]);
  });

  it("lost, when release() finds the holding gone", async () => {
    cluster("error\n");
    const r = recorder();
    const lock = redirectedLock(r.hooks);
    expect(await lock.acquire()).toBe(true);
    await expect(lock.release()).rejects.toBeInstanceOf(LockLostError);
    expect(r.lost.map((e) => e.server)).toEqual([leaderName()]);
    expect(r.released).toEqual([]);
  });

  it("waiting, for a queue place taken on the leader", async () => {
    cluster();
    const r = recorder();
    const lock = redirectedLock(r.hooks);
    expect(await lock.enqueue()).toBe("queued");
    expect(r.waiting).toEqual([{ key: "k", server: leaderName(), reason: "queued" }]);
    lock.close();
  });

  it("abandoned, when the instance is collected while it holds", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      cluster();
      const r = recorder();
      const lock = redirectedLock(r.hooks);
      expect(await lock.acquire()).toBe(true);
      // Its first renewal tells the registry of it (unreleased.ts).
      await tick(5000);
      FakeRegistry.collect(lock);
      expect(r.abandoned).toEqual([{ key: "k", server: leaderName(), object: "DistributedLock", maxHoldS: undefined }]);
      lock.close();
    } finally {
      warn.mockRestore();
    }
  });
});
