/**
 * The client against the reply forms of dflockd builds newer than the run's
 * server: a fencing field on grants and renewals (with the extra stats fields
 * of such builds), `error_lease_expired`, and `error_draining` during a
 * graceful shutdown. These always use the double, whatever server the run
 * uses, because no such build can be installed here; the differential test
 * holds the double's fence and lease-expired forms to a real fence build when
 * one is found. (No real build we could run answers `ping` or `error_draining`;
 * those forms follow the protocol summary.)
 */
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DoubleServer, startDouble } from "../double/server.ts";
import {
  acquire,
  connect,
  DistributedLock,
  DistributedSemaphore,
  enqueue,
  renew,
  ServerError,
  stats,
  waitForLock,
} from "../support/client.ts";
import { key, until } from "./helpers.ts";

describe("a build with fencing tokens and error_lease_expired", () => {
  let server: DoubleServer;
  beforeAll(async () => {
    server = await startDouble([], { fence: true, leaseExpired: true, crAnywhere: true, secondsCap: true });
  });
  afterAll(() => server.stop());
  const at = () => ({ servers: [server.address] });

  it("grants carry an increasing fence, kept across renewals", async () => {
    const a = new DistributedLock({ key: key(), ...at() });
    const b = new DistributedSemaphore({ key: key(), limit: 2, ...at() });
    await a.acquire();
    await b.acquire();
    expect(Number(b.fence)).toBeGreaterThan(Number(a.fence));
    const conn = await connect({ host: server.host, port: server.port });
    const g = await acquire(conn, key(), 0, 5);
    expect(g.fence).toMatch(/^\d+$/);
    expect(Number(g.fence)).toBeGreaterThan(Number(b.fence));
    conn.close();
    await a.release();
    await b.release();
  });

  it("stats with the fields such builds add parses", async () => {
    const lock = new DistributedLock({ key: key(), ...at() });
    await lock.acquire();
    const s = await stats({ host: server.host, port: server.port });
    expect(s.locks.find((l) => l.key === lock.key)).toMatchObject({ fence: Number(lock.fence) });
    expect(s.signal_channels).toBeNull();
    expect(s.rw_locks).toEqual([]);
    await lock.release();
  });

  it("a wait for a grant whose lease ran out is a LEASE_EXPIRED ServerError", async () => {
    const k = key();
    const conn = await connect({ host: server.host, port: server.port });
    expect((await enqueue(conn, k, 1)).status).toBe("acquired");
    await new Promise((r) => setTimeout(r, 1_100)); // the lease's passing is the subject
    const err = await waitForLock(conn, k, 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect(err).toMatchObject({ code: "LEASE_EXPIRED" });
    conn.close();
  });

  it("a renewal of a lease that ran out is a LEASE_EXPIRED ServerError", async () => {
    const k = key();
    const conn = await connect({ host: server.host, port: server.port });
    const g = await acquire(conn, k, 0, 1);
    await new Promise((r) => setTimeout(r, 1_100));
    await expect(renew(conn, k, g.token, 1)).rejects.toMatchObject({ code: "LEASE_EXPIRED" });
    conn.close();
  });
});

describe("a build that drains on shutdown and answers ping", () => {
  it("requests during a graceful shutdown get DRAINING", async () => {
    const server = await startDouble([], { draining: true });
    try {
      const conn = await connect({ host: server.host, port: server.port });
      // The client's connect can complete before the server has taken the connection in.
      await until(() => server.connections() === 1, 5_000, "the double to accept the connection");
      server.drain();
      await expect(acquire(conn, key(), 0)).rejects.toMatchObject({ code: "DRAINING" });
      conn.close();
    } finally {
      await server.stop();
    }
  });

  it("ping is answered with ok", async () => {
    const server = await startDouble([], { ping: true });
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = net.connect(server.port, server.host, () => s.write("ping\n_\n\n"));
        s.setEncoding("utf8");
        s.once("data", (d: string) => {
          s.destroy();
          resolve(d);
        });
        s.once("error", reject);
      });
      expect(reply).toBe("ok\n");
    } finally {
      await server.stop();
    }
  });
});
