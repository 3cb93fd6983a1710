/** Server limits and failures, against real dflockd processes. */
import { describe, expect, it } from "vitest";
import { freePort, startDflockd } from "../harness/dflockd.ts";
import { ConnectionError, connect, DistributedLock, enqueue, LockLostError, stats } from "../support/client.ts";
import { key, until, useDflockd } from "./helpers.ts";

describe("--max-locks 2", () => {
  const server = useDflockd(["--max-locks", "2"]);
  it("a third key gets MAX_LOCKS", async () => {
    const at = { servers: [server().address] };
    const a = new DistributedLock({ key: key(), ...at });
    const b = new DistributedLock({ key: key(), ...at });
    await a.acquire();
    await b.acquire();
    const err = await new DistributedLock({ key: key(), ...at }).acquire().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "MAX_LOCKS" });
    await a.release();
    await b.release();
  });
});

describe("--max-waiters 1", () => {
  const server = useDflockd(["--max-waiters", "1"]);
  it("a second waiter gets MAX_WAITERS", async () => {
    const k = key();
    const at = { servers: [server().address] };
    const holder = new DistributedLock({ key: k, ...at });
    await holder.acquire();
    const w1 = new DistributedLock({ key: k, ...at });
    expect(await w1.enqueue()).toBe("queued");
    const err = await new DistributedLock({ key: k, ...at }).enqueue().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "MAX_WAITERS" });
    w1.close();
    await holder.release();
  });
});

describe("faults", () => {
  it("a refused connection is a ConnectionError with the cause attached", async () => {
    const port = await freePort();
    const err = await new DistributedLock({ key: "k", servers: [["127.0.0.1", port]] }).acquire().catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).cause).toMatchObject({ code: "ECONNREFUSED" });
  });

  it("a server killed while a lock is held: the lock is reported lost promptly", async () => {
    const server = await startDflockd();
    try {
      let lost: LockLostError | undefined;
      const lock = new DistributedLock({
        key: key(),
        servers: [server.address],
        onLost: (e) => {
          lost = e;
        },
      });
      await lock.acquire();
      const t0 = performance.now();
      await server.kill();
      await until(() => lost !== undefined, 2_000, "onLost after the server died");
      expect(performance.now() - t0).toBeLessThan(2_000);
      expect(lock.state).toBe("lost");
      expect(lost?.cause).toBeInstanceOf(ConnectionError);
      // A server that died sent no parting "error": nothing here points at a read timeout.
      expect(lost?.message).not.toMatch(/read timeout|serverReadTimeoutS/);
      await expect(lock.release()).rejects.toBeInstanceOf(LockLostError);
    } finally {
      await server.stop();
    }
  });

  it("an idle connection cut by the server's read timeout surfaces as a ConnectionError, not as a reply", async () => {
    const server = await startDflockd(["--read-timeout", "1"]);
    try {
      const conn = await connect({ host: server.host, port: server.port });
      const closed = new Promise<{ error: Error }>((r) => conn.onClose(r));
      const { error } = await closed;
      expect(error).toBeInstanceOf(ConnectionError);
      await expect(enqueue(conn, "k")).rejects.toBeInstanceOf(ConnectionError);
      expect((await stats({ host: server.host, port: server.port })).connections).toBeGreaterThanOrEqual(1);
    } finally {
      await server.stop();
    }
  });
});
