/**
 * Races in connection sharing, driven through the scripted in-memory peer
 * with fake timers. The scenarios came from a review of the pool and the
 * shared connections: a try on a shared connection that close() gives up,
 * a late reply to it, a close() between a grant's reply and its hand-over,
 * a client closing while a try is due, a connection closed for one holding's
 * sake, a server hanging up just after a shared grant, and a renewal refused
 * by a draining server. Each test states what must happen instead of the bug.
 *
 * Every test talks to a server port of its own, so that a connection one test
 * leaves behind is never lent to the next.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { ConnectionError, LockLostError } from "../../src/errors.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { serve, tick, usePoolTest } from "../support/pool.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
let port = 7400;
/** This test's own server. */
let servers: [string, number][];
beforeEach(() => {
  rt = runtime();
  servers = [["127.0.0.1", ++port]];
});

/** Answer every request on `peer` with a plain "ok". */
function okToAll(peer: PeerEnd): void {
  peer.onRequest = () => peer.send("ok\n");
}

/** Hold `key` on a fresh connection answered by serve(); returns the lock and its peer. */
async function holding(key: string, options: object = {}): Promise<[DistributedLock, PeerEnd]> {
  rt.onPeer = serve;
  const lock = new DistributedLock({ key, leaseTtlS: 10, servers, ...options });
  expect(await lock.acquire()).toBe(true);
  return [lock, rt.peers[rt.peers.length - 1] as PeerEnd];
}

/** Start a try for `key` on `peer` (which holds another key and answers nothing), then wait for it to arrive. */
async function tryOn(peer: PeerEnd, key: string): Promise<[DistributedLock, Promise<unknown>]> {
  peer.onRequest = undefined;
  const lock = new DistributedLock({ key, leaseTtlS: 10, servers });
  const before = peer.requests.length;
  const p = lock.acquire().catch((e: unknown) => e);
  expect(await peer.nextRequest(before + 1)).toEqual(["l", key, "0 10"]);
  return [lock, p];
}

describe("a try on a shared connection, given up by close()", () => {
  it("R1: a later holding of the same instance is dropped by its close()", async () => {
    const [a, peer0] = await holding("a");
    const [b, first] = await tryOn(peer0, "b");
    b.close();
    expect(await first).toMatchObject({ code: "ABORTED" });
    // peer0 still awaits the reply for "b", so the next holding gets a connection of its own.
    rt.onPeer = serve;
    expect(await b.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(2);
    const peer1 = rt.peers[1] as PeerEnd;
    b.close();
    expect(b.state).toBe("released");
    // It was the only holding there: the connection is closed, or at least "b" is given back.
    const gaveBack = peer1.requests.some(([cmd, key]) => cmd === "r" && key === "b");
    expect(peer1.closedByClient || gaveBack).toBe(true);
    expect(sharedPool.shared).toBe(1); // peer0 alone, still holding "a"
    // The late answer to the first try changes nothing for "a".
    okToAll(peer0);
    peer0.send("timeout\n");
    await tick();
    expect(peer0.closedByClient).toBe(false);
    expect(a.state).toBe("held");
    a.close();
  });

  it("R2: a late reply to the first try does not spoil the next: close() rejects it and spares another holder", async () => {
    const lost: string[] = [];
    const onLost = (e: LockLostError) => lost.push(e.key);
    const [a, peer0] = await holding("a");
    const [b, first] = await tryOn(peer0, "b");
    b.close();
    expect(await first).toMatchObject({ code: "ABORTED" });
    // "d" holds on a second connection (enqueue() never shares), which "b" then joins.
    rt.onPeer = serve;
    const d = new DistributedLock({ key: "d", leaseTtlS: 10, onLost, servers });
    expect(await d.enqueue()).toBe("acquired");
    const peer1 = rt.peers[1] as PeerEnd;
    peer1.onRequest = undefined;
    const second = b.acquire().catch((e: unknown) => e);
    expect(await peer1.nextRequest(2)).toEqual(["l", "b", "0 10"]);
    let settled = false;
    void second.then(() => {
      settled = true;
    });
    // The late answer to the first try arrives, then "b" is closed again.
    peer0.send("timeout\n");
    await tick();
    b.close();
    await tick();
    expect(settled).toBe(true);
    expect(await second).toMatchObject({ code: "ABORTED" });
    // The grant for the second try, late: given back on peer1, which "d" keeps.
    okToAll(peer1);
    peer1.send(`ok ${token(9)} 10\n`);
    expect(await peer1.nextRequest(3)).toEqual(["r", "b", token(9)]);
    await tick(100);
    expect(peer1.closedByClient).toBe(false);
    expect(d.state).toBe("held");
    expect(lost).toEqual([]);
    a.close();
    d.close();
  });

  it("R3: a close() between a grant's reply and its hand-over gives the grant back", async () => {
    const [a, peer0] = await holding("a");
    const [b, p] = await tryOn(peer0, "b");
    okToAll(peer0);
    peer0.send(`ok ${token(9)} 10\n`);
    await Promise.resolve(); // the reply is in; acquire() has not resumed yet
    b.close();
    expect(await p).toMatchObject({ code: "ABORTED" });
    await tick(100);
    expect(peer0.requests).toEqual([
      ["l", "a", "10 10"],
      ["l", "b", "0 10"],
      ["r", "b", token(9)],
    ]);
    expect(peer0.closedByClient).toBe(false);
    expect(a.state).toBe("held");
    // Once "a" leaves, the connection is idle holding nothing: "b" went back above.
    await a.release();
    expect(peer0.requests.at(-1)).toEqual(["r", "a", token(1)]);
    expect(peer0.requests.filter(([cmd]) => cmd === "r").map(([, key]) => key)).toEqual(["b", "a"]);
    expect(sharedPool.shared).toBe(0);
    expect(sharedPool.idle).toBe(1);
  });
});

describe("closing with a try due on a shared connection", () => {
  it("R4: DflockdClient.close() closes the shared connection at once", async () => {
    rt.onPeer = serve;
    const client = new DflockdClient({ leaseTtlS: 10, servers });
    const a = client.lock("a");
    expect(await a.acquire()).toBe(true);
    const peer0 = rt.peers[0] as PeerEnd;
    peer0.onRequest = undefined;
    const b = client.lock("b");
    const p = b.acquire().catch((e: unknown) => e);
    expect(await peer0.nextRequest(2)).toEqual(["l", "b", "0 10"]);
    client.close();
    expect(peer0.closedByClient).toBe(true);
    expect(await p).toMatchObject({ code: "ABORTED" });
    expect(a.state).toBe("released");
    expect(b.state).toBe("released");
    expect(vi.getTimerCount()).toBe(0);
  });

  /** "a" holds with a 2 s lease on a connection that then goes silent; "b" tries on it while "a" releases. */
  async function lossBesideATry(
    acquireTimeoutS = 10,
  ): Promise<[PeerEnd, Promise<unknown>, DistributedLock, Promise<unknown>]> {
    rt.onPeer = (peer) => {
      peer.onRequest = () => peer.send(`ok ${token(1)} 2\n`);
    };
    const a = new DistributedLock({ key: "a", servers });
    expect(await a.acquire()).toBe(true);
    const peer0 = rt.peers[0] as PeerEnd;
    peer0.onRequest = undefined;
    const r = a.release().catch((e: unknown) => e);
    const b = new DistributedLock({ key: "b", leaseTtlS: 10, servers, acquireTimeoutS });
    const p = b.acquire().catch((e: unknown) => e);
    expect(await peer0.nextRequest(3)).toEqual(["l", "b", "0 10"]);
    return [peer0, r, b, p];
  }

  it("R5: one holding's deadline does not close a connection a try is waiting on; the try fails on its own", async () => {
    // No time left to ask again on a connection of its own once the try gives up (see pool.test.ts).
    const [peer0, r, b, p] = await lossBesideATry(0);
    rt.refuse = true; // no fresh connection for the one retry
    // "a"'s lease runs out unanswered: "a" is lost, but the clock proves nothing about the connection.
    await tick(2_000);
    expect(await r).toBeInstanceOf(LockLostError);
    expect(peer0.closedByClient).toBe(false);
    expect(b.state).toBe("connecting");
    // The try's own request timeout (5 s) ends it, as a connection failure, not a loss.
    await tick(5_000);
    const err = await p;
    expect(err).not.toBeInstanceOf(LockLostError);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: "TIMEOUT" });
    expect(b.state).toBe("released");
    // A server that answers nothing for the request timeout and its read timeout more is stuck: closed.
    expect(peer0.closedByClient).toBe(false);
    await tick(30_000);
    expect(peer0.closedByClient).toBe(true);
  });

  it("R5: a connection lost beside a try is a connection failure, not a loss: the one retry on a fresh connection", async () => {
    const [peer0, r, b, p] = await lossBesideATry();
    rt.onPeer = serve;
    await tick(2_000);
    expect(await r).toBeInstanceOf(LockLostError);
    peer0.hangUp();
    expect(await p).toBe(true);
    expect(rt.peers).toHaveLength(2);
    expect(rt.peers[1]?.requests).toEqual([["l", "b", "10 10"]]);
    expect(b.state).toBe("held");
    b.close();
  });
});

describe("the server hangs up just after a shared grant", () => {
  // The window is a few microtasks wide; the sweep covers it and either side.
  for (let k = 0; k < 8; k++) {
    it(`${k} microtasks after the reply: the instance is not left connecting, and acquires again`, async () => {
      const [a, peer0] = await holding("a");
      const [b, p] = await tryOn(peer0, "b");
      peer0.send(`ok ${token(9)} 10\n`);
      for (let i = 0; i < k; i++) await Promise.resolve();
      peer0.hangUp();
      const result = await p;
      expect(b.state).not.toBe("connecting");
      if (result === true && b.state === "lost") {
        // Handed over before the hang-up, and lost with the connection.
        expect(rt.peers).toHaveLength(1);
      } else if (result === true) {
        // The reply was not taken before the hang-up: the one retry, on a fresh connection.
        expect(b.state).toBe("held");
        expect(rt.peers).toHaveLength(2);
        expect(rt.peers[1]?.requests).toEqual([["l", "b", "10 10"]]);
        await b.release();
      } else {
        expect(result).toBeInstanceOf(ConnectionError);
        expect(b.state).toBe("released");
      }
      expect(a.state).toBe("lost");
      rt.onPeer = serve;
      expect(await b.acquire()).toBe(true);
      expect(b.state).toBe("held");
      b.close();
    });
  }
});

describe("a draining server", () => {
  it("a renewal answered error_draining closes the connection: it is not lent again", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => peer.send(cmd === "n" ? "error_draining\n" : `ok ${token(1)} 10\n`);
    };
    const lost: LockLostError[] = [];
    const a = new DistributedLock({ key: "a", leaseTtlS: 10, servers, onLost: (e) => lost.push(e) });
    expect(await a.acquire()).toBe(true);
    const peer = rt.peers[0] as PeerEnd;
    await tick(6_000);
    expect(peer.requests.map(([cmd]) => cmd)).toEqual(["l", "n"]);
    expect(lost).toHaveLength(1);
    expect(a.state).toBe("lost");
    expect(peer.closedByClient).toBe(true);
    expect(sharedPool.idle).toBe(0);
    // The next holding gets a connection of its own.
    expect(await a.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(2);
    a.close();
  });
});
