/**
 * A release's reply goes to its holding once the chunk that brought it is read
 * (Connection.send(), inflight.ts): the orders a shared connection can see in
 * one chunk (two releases, a release and the server's parting error, a release
 * and a given-up try's grant, an acquire started from the ending holding's
 * signal), and a peer that answers inside write().
 */
import { beforeEach, describe, expect, it } from "vitest";
import { LockLostError } from "../../src/errors.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { serve, tick, usePoolTest } from "../support/pool.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
let port = 7900;
let servers: [string, number][];
beforeEach(() => {
  rt = runtime();
  servers = [["127.0.0.1", ++port]];
});

async function twoOnOne(): Promise<[DistributedLock, DistributedLock, PeerEnd]> {
  rt.onPeer = serve;
  const a = new DistributedLock({ key: "a", leaseTtlS: 10, servers });
  expect(await a.acquire()).toBe(true);
  const b = new DistributedLock({ key: "b", leaseTtlS: 10, servers });
  expect(await b.acquire()).toBe(true);
  expect(rt.peers).toHaveLength(1);
  const peer = rt.peers[0] as PeerEnd;
  peer.onRequest = undefined;
  return [a, b, peer];
}

describe("release replies handed over at the end of the chunk", () => {
  it("two releases answered in one chunk: both released, the connection idle", async () => {
    const [a, b, peer] = await twoOnOne();
    const ra = a.release();
    const rb = b.release();
    await peer.nextRequest(4);
    peer.send("ok\nok\n");
    await ra;
    await rb;
    expect(a.state).toBe("released");
    expect(b.state).toBe("released");
    expect(peer.closedByClient).toBe(false);
    expect(sharedPool.idle).toBe(1);
  });

  it("a release's ok and the server's parting error in one chunk: released, the other holding lost", async () => {
    const [a, b, peer] = await twoOnOne();
    const ra = a.release();
    await peer.nextRequest(3);
    peer.send("ok\nerror\n");
    await expect(ra).resolves.toBeUndefined();
    expect(b.state).toBe("lost");
    await expect(b.release()).rejects.toBeInstanceOf(LockLostError);
    expect(peer.closedByClient).toBe(true);
  });

  it("a release's ok and a given-up try's grant in one chunk: the grant is not left on an idle connection", async () => {
    const [a, b, peer] = await twoOnOne();
    void b;
    const c = new DistributedLock({ key: "c", leaseTtlS: 10, servers });
    const pc = c.acquire().catch((e: unknown) => e);
    await peer.nextRequest(3);
    expect(peer.requests[2]).toEqual(["l", "c", "0 10"]);
    c.close();
    expect(await pc).toMatchObject({ code: "ABORTED" });
    b.close();
    await peer.nextRequest(4);
    expect(peer.requests[3]?.[0]).toBe("r");
    const ra = a.release();
    await peer.nextRequest(5);
    peer.onRequest = () => peer.send("ok\n");
    peer.send(`ok ${token(9)} 10\nok\nok\n`);
    await ra;
    await tick(100);
    const gaveBack = peer.requests.some(([cmd, key]) => cmd === "r" && key === "c");
    expect(peer.closedByClient || gaveBack).toBe(true);
    if (!peer.closedByClient) expect(sharedPool.idle).toBe(1);
  });

  it("an acquire started from the holding's signal as the release's reply is handed over", async () => {
    const [a, b, peer] = await twoOnOne();
    const sig = a.signal as AbortSignal;
    let inner: Promise<unknown> | undefined;
    const d = new DistributedLock({ key: "d", leaseTtlS: 10, servers });
    sig.addEventListener("abort", () => {
      inner = d.acquire().catch((e: unknown) => e);
    });
    const ra = a.release();
    await peer.nextRequest(3);
    peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(7)} 10\n` : "ok\n");
    peer.send("ok\n");
    await ra;
    expect(await inner).toBe(true);
    expect(d.state).toBe("held");
    expect(b.state).toBe("held");
    d.close();
    b.close();
  });

  it("with an in-memory peer that answers inside write(), release() still ends after the call, as with a socket", async () => {
    rt.onPeer = serve;
    const a = new DistributedLock({ key: "a", leaseTtlS: 10, servers });
    expect(await a.acquire()).toBe(true);
    const r = a.release();
    // The reply was read inside send(), within the driver's own action: it is handed over a microtask later.
    expect(a.state).toBe("releasing");
    await r;
    expect(a.state).toBe("released");
  });
});
