/**
 * Shared connections: a given-up try answered by a server error, a
 * re-entrant acquire in onLost, and an old release() beside a newer attempt.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
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

async function holding(key: string, options: object = {}): Promise<[DistributedLock, PeerEnd]> {
  rt.onPeer = serve;
  const lock = new DistributedLock({ key, leaseTtlS: 10, servers, ...options });
  expect(await lock.acquire()).toBe(true);
  return [lock, rt.peers[rt.peers.length - 1] as PeerEnd];
}

describe("given-up try answered by a server error", () => {
  it("does not close the shared connection under another holder", async () => {
    const onLost = vi.fn();
    const [a, peer0] = await holding("a", { onLost });
    peer0.onRequest = undefined;
    const b = new DistributedLock({ key: "b", leaseTtlS: 10, servers });
    const p = b.acquire().catch((e: unknown) => e);
    await peer0.nextRequest(2);
    b.close();
    expect(await p).toMatchObject({ code: "ABORTED" });
    peer0.send("error_max_locks\n");
    await tick();
    expect(onLost).not.toHaveBeenCalled();
    expect(a.state).toBe("held");
    expect(peer0.closedByClient).toBe(false);
    a.close();
  });

  it("an onLost that re-acquires another key may join the connection a holding lost to the clock leaves", async () => {
    const [a, peer0] = await holding("a", { leaseTtlS: 4, requestTimeoutMs: 60_000 });
    // "c" shares peer0
    const c = new DistributedLock({ key: "c", leaseTtlS: 10, servers });
    expect(await c.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(1);
    let again: Promise<unknown> | undefined;
    const d = new DistributedLock({ key: "d", leaseTtlS: 10, servers });
    a.signal?.addEventListener("abort", () => {
      again = d.acquire().catch((e: unknown) => e);
    });
    const before = peer0.requests.length;
    const t = performance.now();
    vi.spyOn(performance, "now").mockReturnValue(t + 20_000); // a pause past the deadline, no timer run
    expect(a.state).toBe("lost");
    vi.restoreAllMocks();
    // The clock proves nothing about the connection: "c" keeps it, "d" joins it, and "a"'s token is given back.
    expect(await again).toBe(true);
    expect(peer0.closedByClient).toBe(false);
    expect(peer0.requests.slice(before)).toEqual([
      ["l", "d", "0 10"],
      ["r", "a", token(1)],
    ]);
    expect(c.state).toBe("held");
    c.close();
    d.close();
  });
});

describe("an older release taking a newer generation's failure", () => {
  it("a dropped queue place is still reported by wait() after an old release settles", async () => {
    const [a, peer0] = await holding("a", { requestTimeoutMs: 60_000 });
    const [b] = await holding("b");
    expect(rt.peers).toHaveLength(1);
    peer0.onRequest = undefined;
    await tick(4750); // a's renewal goes out, unanswered
    expect(peer0.requests.at(-1)?.[0]).toBe("n");
    const r = a.release().catch((e: unknown) => e); // waits for the renewal
    a.close(); // gives "a" back on the shared connection
    // A new generation: queued on a connection of its own, which then drops.
    rt.onPeer = undefined;
    const e = a.enqueue();
    await tick();
    expect(rt.peers).toHaveLength(2);
    const peer1 = rt.peers[1] as PeerEnd;
    await peer1.nextRequest(1);
    peer1.send("queued\n");
    expect(await e).toBe("queued");
    peer1.hangUp(new Error("ECONNRESET"));
    await tick();
    expect(a.state).toBe("released");
    // Now the old renewal's reply arrives: the old release() settles.
    peer0.send("ok 10\n");
    await tick();
    // The user closed that holding: its release() settles quietly, and takes nothing of the newer attempt.
    expect(await r).toBeUndefined();
    await expect(a.wait(1)).rejects.toMatchObject({ code: "CONNECTION" });
    b.close();
  });
});

describe("a try on a shared connection behind a slow server", () => {
  it("fails its caller at requestTimeoutMs, and leaves the connection, and the holding on it, alone", async () => {
    const onLost = vi.fn();
    const [a, peer0] = await holding("a", { onLost, leaseTtlS: 30 });
    peer0.onRequest = undefined; // the server is slow: nothing is answered for now
    // No time to wait on a connection of its own after the try (see pool.test.ts for a caller that has it).
    const b = new DistributedLock({ key: "b", leaseTtlS: 10, servers, requestTimeoutMs: 1000, acquireTimeoutS: 0 });
    const p = b.acquire().catch((e: unknown) => e);
    expect(await peer0.nextRequest(2)).toEqual(["l", "b", "0 10"]);
    await tick(1000);
    expect(await p).toMatchObject({ code: "TIMEOUT" });
    expect(b.state).toBe("released");
    // The old client closed the connection here, and "a" was reported lost with it.
    expect(peer0.closedByClient).toBe(false);
    expect(a.state).toBe("held");
    expect(onLost).not.toHaveBeenCalled();
    // The late grant is given back when it comes.
    peer0.send(`ok ${token(7)} 10\n`);
    await tick();
    expect(peer0.requests.at(-1)).toEqual(["r", "b", token(7)]);
    peer0.send("ok\n");
    await tick();
    expect(a.state).toBe("held");
    a.close();
  });

  it("a client's close() closes a connection whose only use is a try its caller gave up", async () => {
    const client = new DflockdClient({ servers, requestTimeoutMs: 1000 });
    rt.onPeer = serve;
    const a = client.lock("a");
    expect(await a.acquire()).toBe(true);
    const peer0 = rt.peers[0] as PeerEnd;
    peer0.onRequest = undefined;
    const b = client.lock("b", { acquireTimeoutS: 0 });
    const p = b.acquire().catch((e: unknown) => e);
    await peer0.nextRequest(2);
    await tick(1000);
    expect(await p).toMatchObject({ code: "TIMEOUT" });
    // "a" leaves, giving its token back on the connection: now only the given-up try is on it.
    a.close();
    expect(peer0.requests.at(-1)?.slice(0, 2)).toEqual(["r", "a"]);
    expect(peer0.closedByClient).toBe(false);
    client.close();
    expect(peer0.closedByClient).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

/**
 * The scripted server from now on: it answers in order (`leaseOf(key)` for
 * grants and renewals) and can be stalled (replies held back, then sent in
 * order). Its controls act on the connection opened last; a new one starts
 * unstalled.
 */
function stallable(leaseOf: (key: string) => number = () => 30): {
  stall(): void;
  flush(count: number, stay: boolean): void;
} {
  let stalled = false;
  let held: string[] = [];
  let peer: PeerEnd | undefined;
  rt.onPeer = (p) => {
    peer = p;
    held = [];
    stalled = false;
    let n = 0;
    const reply = (line: string): void => {
      if (stalled) held.push(line);
      else p.send(line);
    };
    p.onRequest = ([cmd, key]) => {
      if (cmd === "l") reply(`ok ${token(++n)} ${leaseOf(key as string)}\n`);
      else if (cmd === "n") reply(`ok ${leaseOf(key as string)}\n`);
      else reply("ok\n");
    };
  };
  return {
    stall: (): void => {
      stalled = true;
    },
    /** Send the first `count` replies held back; stay stalled for the rest if `stay`. */
    flush: (count: number, stay: boolean): void => {
      for (const line of held.splice(0, count)) peer?.send(line);
      stalled = stay;
    },
  };
}

// Found in review.
describe("a slow server and a shared connection", () => {
  it("a holding lost to its deadline: a slow reply to its own release does not close the connection under another", async () => {
    const lost: string[] = [];
    const client = new DflockdClient({ servers, onLost: (e) => lost.push(e.key) });
    const server = stallable((k) => (k === "a" ? 3 : 60));
    const a = client.lock("a", { leaseTtlS: 3 });
    const b = client.lock("b", { leaseTtlS: 60 });
    expect(await a.acquire()).toBe(true);
    expect(await b.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(1);
    server.stall();
    await tick(3000); // a's renewal unanswered: a is lost at its deadline, its token given back behind it
    expect(a.state).toBe("lost");
    // The server answers a's renewal, then takes 6 s over a's release: more than requestTimeoutMs.
    server.flush(1, true);
    await tick(6000);
    expect(b.state).toBe("held");
    expect(lost).toEqual(["a"]);
    expect(rt.peers[0]?.closedByClient).toBe(false);
    client.close();
  });

  it("a connection that leaves a try unanswered takes no new tries; the holding on it stays", async () => {
    const client = new DflockdClient({ servers });
    const server = stallable();
    const a = client.lock("a", { leaseTtlS: 30 });
    expect(await a.acquire()).toBe(true);
    server.stall();
    const c = client
      .lock("c", { acquireTimeoutS: 0 })
      .acquire()
      .catch((e: unknown) => e);
    await tick(5000);
    expect(await c).toMatchObject({ code: "TIMEOUT" });
    // The next acquire connects afresh instead of queueing behind the silent connection.
    const d = client.lock("d").acquire();
    await tick();
    expect(rt.peers).toHaveLength(2);
    expect(await d).toBe(true);
    expect(a.state).toBe("held");
    client.close();
  });

  it("an instance closed during its try, then the holding beside it: client.close() closes the connection", async () => {
    const client = new DflockdClient({ servers });
    const server = stallable();
    const a = client.lock("a");
    const b = client.lock("b");
    expect(await a.acquire()).toBe(true);
    server.stall();
    const tried = b.acquire().catch((e: unknown) => e);
    await tick();
    b.close();
    expect(await tried).toMatchObject({ code: "ABORTED" });
    a.close(); // b's try still counts as a user: a gives its token back and leaves the connection clean
    await tick();
    expect(rt.peers[0]?.closedByClient).toBe(false);
    client.close();
    expect(rt.peers[0]?.closedByClient).toBe(true);
    await tick();
    expect(vi.getTimerCount()).toBe(0);
  });
});

// Found in review: the pool counted a connection an orphan once, and any reply on it forgot it.
describe("client.close() and tries given up on a shared connection", () => {
  it("two given-up tries on one connection, one answered: client.close() still closes it", async () => {
    const client = new DflockdClient({ servers });
    const server = stallable();
    const [a, b, c] = ["a", "b", "c"].map((k) => client.lock(k)) as [DistributedLock, DistributedLock, DistributedLock];
    expect(await a.acquire()).toBe(true);
    server.stall();
    const tried = [b.acquire().catch((e: unknown) => e), c.acquire().catch((e: unknown) => e)];
    await tick();
    b.close();
    c.close();
    for (const t of tried) expect(await t).toMatchObject({ code: "ABORTED" });
    a.close();
    await tick();
    server.flush(1, true); // b's reply only
    await tick();
    expect(rt.peers[0]?.closedByClient).toBe(false);
    client.close();
    expect(rt.peers[0]?.closedByClient).toBe(true);
  });

  it("a reply to a try nobody gave up does not make the pool forget one that was", async () => {
    const client = new DflockdClient({ servers });
    const server = stallable();
    const [c, b, a] = ["c", "b", "a"].map((k) => client.lock(k)) as [DistributedLock, DistributedLock, DistributedLock];
    expect(await c.acquire()).toBe(true);
    server.stall();
    const tb = b.acquire(); // sent first, never given up
    const ta = a.acquire().catch((e: unknown) => e);
    await tick();
    a.close(); // given up: its reply still leaves the connection
    expect(await ta).toMatchObject({ code: "ABORTED" });
    server.flush(1, true); // b's grant
    expect(await tb).toBe(true);
    b.close();
    c.close();
    await tick();
    client.close();
    expect(rt.peers[0]?.closedByClient).toBe(true);
  });
});
