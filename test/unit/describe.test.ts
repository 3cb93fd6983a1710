/**
 * toString(): one line for logs, for locks, semaphores, holdings, several
 * holdings and clients: what it is, its key, its server, its state; never a
 * token or the auth secret. Against a scripted peer, with fake timers.
 */
import { describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import { useLockTest } from "../support/lock-test.ts";
import { type PeerEnd, token } from "../support/scripted-peer.ts";

const runtime = useLockTest();
const SECRET = "s3cret-auth";

/** Answer every request as a free server would, with fence 7. */
function serve(peer: PeerEnd): void {
  let n = 0;
  peer.onRequest = ([cmd]) => peer.send(cmd === "l" || cmd === "sl" ? `ok ${token(++n)} 10 7\n` : "ok\n");
}

/** A connection's auth exchange then free-server answers. */
function serveAuthed(peer: PeerEnd): void {
  let n = 0;
  peer.onRequest = ([cmd]) =>
    peer.send(cmd === "auth" ? "ok\n" : cmd === "l" || cmd === "sl" ? `ok ${token(++n)} 10 7\n` : "ok\n");
}

describe("DistributedLock and DistributedSemaphore", () => {
  it("name the key, the server and the state; the fence while held; never the token or secret", async () => {
    const lock = new DistributedLock({ key: "report", servers: ["10.0.0.1:6388"], auth: SECRET });
    expect(String(lock)).toBe('DistributedLock(key "report" on 10.0.0.1:6388, released)');
    runtime().onPeer = serveAuthed;
    expect(await lock.acquire()).toBe(true);
    expect(`${lock}`).toBe('DistributedLock(key "report" on 10.0.0.1:6388, held, fence 7)');
    expect(`${lock}`).not.toContain(token(1));
    expect(`${lock}`).not.toContain(SECRET);
    await lock.release();
    expect(lock.toString()).toBe('DistributedLock(key "report" on 10.0.0.1:6388, released)');
  });

  it("a semaphore gives its limit; an IPv6 server its brackets; a key its escapes", () => {
    const sem = new DistributedSemaphore({ key: "enc\u00a0oders", limit: 4, servers: [["::1", 6390]] });
    expect(sem.toString()).toBe('DistributedSemaphore(key "enc\\u00a0oders" limit 4 on [::1]:6390, released)');
  });

  it("is the toJSON() summary's fields, and says so when the sharding strategy fails", () => {
    const lock = new DistributedLock({ key: "k", servers: ["a:1", "b:2"], shardingStrategy: () => 7 });
    expect(lock.toString()).toBe('DistributedLock(key "k" on (the sharding strategy fails), released)');
  });

  it("shows a loss", async () => {
    const lock = new DistributedLock({ key: "k" });
    const p = lock.acquire();
    const peer = await runtime().peer();
    serve(peer);
    expect(await p).toBe(true);
    peer.hangUp();
    await vi.advanceTimersByTimeAsync(0);
    expect(lock.toString()).toBe('DistributedLock(key "k" on 127.0.0.1:6388, lost)');
    await lock.release().catch(() => {});
  });
});

describe("HeldLock", () => {
  it("names its key, server and fence while held, then released; never the token", async () => {
    const sem = new DistributedSemaphore({ key: "slots", limit: 3, servers: ["10.0.0.2:7000"] });
    runtime().onPeer = serve;
    const held = await sem.hold();
    expect(held.server).toBe("10.0.0.2:7000");
    expect(`${held}`).toBe('HeldLock(key "slots" limit 3 on 10.0.0.2:7000, held, fence 7)');
    expect(`${held}`).not.toContain(held.token);
    await held.release();
    expect(`${held}`).toBe('HeldLock(key "slots" limit 3 on 10.0.0.2:7000, released, fence 7)');
  });

  it("shows a loss without reading the clock, and an end by close()", async () => {
    const lock = new DistributedLock({ key: "k" });
    const h = lock.hold();
    const peer = await runtime().peer();
    serve(peer);
    const held = await h;
    peer.hangUp();
    await vi.advanceTimersByTimeAsync(0);
    expect(`${held}`).toBe('HeldLock(key "k" on 127.0.0.1:6388, lost, fence 7)');
    await held.release().catch(() => {});

    const other = new DistributedLock({ key: "j" });
    runtime().onPeer = serve;
    const second = await other.hold();
    other.close();
    expect(`${second}`).toBe('HeldLock(key "j" on 127.0.0.1:6388, ended, fence 7)');
    await second.release().catch(() => {});
  });
});

describe("HeldLocks and DflockdClient", () => {
  it("HeldLocks lists its keys by server in the order taken, and its state", async () => {
    const client = new DflockdClient({ servers: ["10.0.0.1:1", "10.0.0.2:2"], auth: SECRET });
    runtime().onPeer = serveAuthed;
    // stableHashShard (zlib.crc32 % 2): "d" goes to index 0, "a" and "c" to index 1.
    const held = await client.holdAll(["c", "d", "a"]);
    expect(held.locks.map((h) => `${h.key}@${h.server}`)).toEqual(["d@10.0.0.1:1", "a@10.0.0.2:2", "c@10.0.0.2:2"]);
    expect(`${held}`).toBe('HeldLocks(3 keys, held: "d" on 10.0.0.1:1; "a", "c" on 10.0.0.2:2)');
    expect(`${held}`).not.toContain(SECRET);
    await held.release();
    expect(`${held}`).toBe('HeldLocks(3 keys, released: "d" on 10.0.0.1:1; "a", "c" on 10.0.0.2:2)');
    expect(String(client)).toBe("DflockdClient(servers 10.0.0.1:1 10.0.0.2:2, open)");
    client.close();
    expect(String(client)).toBe("DflockdClient(servers 10.0.0.1:1 10.0.0.2:2, closed)");
    expect(String(client)).not.toContain(SECRET);
  });

  it("HeldLocks names at most 8 keys, and a loss of any", async () => {
    const client = new DflockdClient();
    runtime().onPeer = serve;
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const held = await client.holdAll(keys);
    expect(`${held}`).toBe(
      'HeldLocks(10 keys, held: "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7" on 127.0.0.1:6388; and 2 more)',
    );
    runtime().peers[3]?.hangUp();
    await vi.advanceTimersByTimeAsync(0);
    expect(`${held}`).toMatch(/^HeldLocks\(10 keys, lost: /);
    await held.release().catch(() => {});
    client.close();
  });
});
