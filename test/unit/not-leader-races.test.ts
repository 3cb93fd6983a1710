/**
 * `error_not_leader` at the edges of an attempt, against a scripted fake
 * server (neither the double nor dflockd here answers it): a close() in the
 * tick the follower's answer comes ends the call without a redirect, and a
 * queue place answered so is given up with its connection.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { DistributedLock } from "../../src/primitive.ts";
import { tick, usePoolTest } from "../support/pool.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

describe("error_not_leader at the edges of an attempt", () => {
  it("a close() in the tick the follower's answer arrives ends the acquisition: no redirect, nothing held", async () => {
    const follower = 7701;
    const leader = 7702;
    rt.onPeer = (peer) => {
      if (peer.target.port === leader)
        peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(9)} 10\n` : "ok\n");
    };
    const lock = new DistributedLock({
      key: "k",
      servers: [
        ["127.0.0.1", follower],
        ["127.0.0.1", leader],
      ],
      shardingStrategy: () => 0,
    });
    const acquiring = lock.acquire({ timeoutS: 0 }).then(
      (v) => v,
      (e: unknown) => e,
    );
    const peer = (await rt.peer()) as PeerEnd;
    await peer.nextRequest(1);
    peer.send(`error_not_leader 127.0.0.1:${leader}\n`);
    lock.close();
    const result = await acquiring;
    await tick(0);
    expect(rt.peers.filter((p) => p.target.port === leader).flatMap((p) => p.requests)).toEqual([]);
    expect(lock.state).toBe("released");
    expect(result).toMatchObject({ code: "ABORTED" });
  });

  it("a wait() answered so gives its queue place's connection up, as a queued timeout does, not back to the pool", async () => {
    for (const [port, answer] of [
      [7711, "error_not_leader\n"],
      [7712, "timeout\n"],
    ] as const) {
      rt.onPeer = (peer) => {
        peer.onRequest = ([cmd]) => peer.send(cmd === "e" ? "queued\n" : cmd === "w" ? answer : "ok\n");
      };
      const lock = new DistributedLock({ key: "k", servers: [["127.0.0.1", port]] });
      expect(await lock.enqueue()).toBe("queued");
      await lock.wait(5).catch((e: unknown) => e);
      await tick(0);
      const peer = rt.peers.find((p) => p.target.port === port) as PeerEnd;
      expect(peer.closedByClient, answer).toBe(true);
      lock.close();
    }
  });
});
