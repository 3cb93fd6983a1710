/**
 * The runtime's own adapter over real loopback TCP, against *scripted fake
 * servers* (test/support/scripted-server.mjs, in a separate Node process).
 * They are used only for what a real dflockd cannot be made to do: bytes
 * split at chosen places, malformed replies, stalls, hang-ups.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  acquire,
  ConnectionError,
  connect,
  DistributedLock,
  LockLostError,
  ProtocolError,
  release,
  runtime,
  stats,
} from "../support/client.ts";
import { RUNTIME, type ScriptedServer, scriptedServer } from "../support/runtime.ts";

let servers: ScriptedServer[] = [];
afterEach(() => {
  for (const s of servers) s.stop();
  servers = [];
  vi.restoreAllMocks();
});
async function fake(scenario: string): Promise<number> {
  const s = await scriptedServer(scenario);
  servers.push(s);
  return s.port;
}

describe(`the ${RUNTIME} adapter`, () => {
  it("is the one the entry point chose for this runtime", () => {
    expect(runtime().name).toBe(RUNTIME);
  });

  it("uses the runtime's native sockets even when node:net is unusable", async () => {
    const port = await fake("ok");
    // Every node:net client socket connects through Socket.prototype.connect
    // (createConnection and connect call it); break it for this test.
    const { Socket } = await import("node:net");
    const original = Socket.prototype.connect;
    let emulationUsed = 0;
    Socket.prototype.connect = function broken(): never {
      emulationUsed++;
      throw new Error("node:net must not be used by this adapter");
    } as typeof original;
    const g = globalThis as unknown as { Bun?: { connect: () => unknown }; Deno?: { connect: () => unknown } };
    const native =
      RUNTIME === "bun"
        ? vi.spyOn(g.Bun as { connect: () => unknown }, "connect")
        : RUNTIME === "deno"
          ? vi.spyOn(g.Deno as { connect: () => unknown }, "connect")
          : undefined;
    try {
      const lock = new DistributedLock({ key: "k", port });
      if (RUNTIME === "node") {
        // On Node, node:net is the native API: breaking it must break the client (the check can fail).
        await expect(lock.acquire()).rejects.toThrow();
        expect(emulationUsed).toBe(1);
        return;
      }
      expect(await lock.acquire()).toBe(true);
      await lock.release();
      expect(native).toHaveBeenCalled();
      expect(emulationUsed).toBe(0);
    } finally {
      Socket.prototype.connect = original;
    }
  });

  it("decodes replies sent one byte at a time, including multi-byte characters", async () => {
    const port = await fake("trickle");
    const s = await stats({ port });
    expect(s.locks[0]?.key).toBe("ключ🔒");
    expect(s.semaphores).toEqual([]);
    const lock = new DistributedLock({ key: "k", port });
    expect(await lock.acquire()).toBe(true);
    await lock.release();
  });

  it("connections reading at the same time keep their bytes apart (Node reads them into one shared buffer)", async () => {
    const port = await fake("trickle");
    const all = await Promise.all([0, 1, 2, 3].map(() => stats({ port })));
    expect(all.map((s) => s.locks[0]?.key)).toEqual(["ключ🔒", "ключ🔒", "ключ🔒", "ключ🔒"]);
  });

  it("a malformed reply fails the request with a ProtocolError", async () => {
    const lock = new DistributedLock({ key: "k", port: await fake("malformed") });
    await expect(lock.acquire()).rejects.toBeInstanceOf(ProtocolError);
    expect(lock.state).toBe("released");
  });

  it("release() waits for a stalled server while the lease is provable, and is bounded by its deadline", async () => {
    const lock = new DistributedLock({ key: "k", port: await fake("stall"), leaseTtlS: 1, requestTimeoutMs: 300 });
    expect(await lock.acquire()).toBe(true);
    const t0 = performance.now();
    const err = await lock.release().catch((e: unknown) => e);
    const took = performance.now() - t0;
    // Not at the request timeout (a slow server is not a lost lock): at the lease's deadline, less the margin.
    expect(err).toBeInstanceOf(LockLostError);
    expect(took).toBeGreaterThanOrEqual(400);
    expect(took).toBeLessThan(2000);
    expect(lock.state).toBe("released");
  });

  it("a server that hangs up while a lock is held marks it lost", async () => {
    const port = await fake("hangup");
    const lost = new Promise<Error>((resolve) => {
      void new DistributedLock({ key: "k", port, onLost: resolve }).acquire();
    });
    expect((await lost).name).toBe("LockLostError");
  });

  it("writes that back up (a server not reading) arrive whole and in order, multi-byte characters included", async () => {
    const s = await scriptedServer("deaf");
    servers.push(s);
    const conn = await connect({ port: s.port });
    const token = "0123456789abcdef0123456789abcdef";
    const tail = `:${"é".repeat(120)}`;
    // About 17 MB: more than the loopback send and receive buffers hold, so the
    // runtime's socket takes only part of some writes and the adapter keeps the rest.
    const replies = Array.from({ length: 60_000 }, (_, n) => release(conn, `${n}${tail}`, token));
    s.tell("resume");
    const settled = await Promise.allSettled(replies);
    const failed = settled.filter((r) => r.status === "rejected");
    expect(failed.length, String((failed[0] as PromiseRejectedResult | undefined)?.reason)).toBe(0);
    conn.close();
  }, 60_000);

  it("connect() gives a connection the low-level functions pipeline on", async () => {
    const port = await fake("ok");
    const conn = await connect({ port });
    const [a, b] = await Promise.all([acquire(conn, "a", 1), acquire(conn, "b", 1)]);
    expect(a.token).toBe(b.token);
    await release(conn, "a", a.token);
    expect((await stats(conn)).connections).toBe(7);
    conn.close();
  });

  it("a refused connection is a ConnectionError carrying the system error", async () => {
    const s = await scriptedServer("ok");
    const port = s.port;
    s.stop();
    // Wait until the port is closed.
    for (let i = 0; i < 100; i++) {
      const err = await connect({ port }).then(
        (c) => {
          c.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      if (err !== undefined) {
        expect(err).toBeInstanceOf(ConnectionError);
        expect((err as Error).cause).toBeDefined();
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("the port never closed");
  });
});
