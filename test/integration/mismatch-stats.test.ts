/**
 * The `stats` fetch that tells a LIMIT_MISMATCH's server limit, cut short:
 * through a proxy that never passes a `stats` request on, the caller's abort
 * rejects at once with ABORTED, and the instance's or the client's close()
 * at once with the mismatch (without the server's limit); either way the
 * stats connection is closed at once. A burst of mismatches asks the
 * server's stats once; and the server named (and asked) is the one the
 * attempt talked to, not a custom strategy's second pick. Through a second
 * proxy that holds each `stats` request 1.5 s (so that both mismatches land
 * while it runs), one caller giving up (its signal, its client's close())
 * leaves the shared fetch to the others.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type ChunkEvent, type FaultProxy, startProxy } from "../faults/proxy.ts";
import type { DflockdServer } from "../harness/dflockd.ts";
import {
  connect,
  DflockdClient,
  DistributedSemaphore,
  LimitMismatchError,
  type LockError,
  semAcquire,
} from "../support/client.ts";
import { key, until, useDflockds } from "./helpers.ts";

const servers = useDflockds(2);
const text = (c: Uint8Array | undefined): string => (c === undefined ? "" : new TextDecoder().decode(c));

let proxy: FaultProxy;
let slowStats: FaultProxy;
let events: ChunkEvent[] = [];
beforeAll(async () => {
  proxy = await startProxy({ port: servers()[0]?.port as number });
  proxy.observe((e) => {
    events.push(e);
  });
  // A `stats` request never reaches the server: its reply never comes.
  proxy.setDelay("up", (chunk) => (text(chunk).startsWith("stats") ? 600_000 : 0));
  slowStats = await startProxy({ port: servers()[0]?.port as number });
  slowStats.observe((e) => {
    events.push(e);
  });
  slowStats.setDelay("up", (chunk) => (text(chunk).startsWith("stats") ? 1500 : 0));
});
afterAll(() => {
  proxy.close();
  slowStats.close();
});
afterEach(() => {
  vi.restoreAllMocks();
  events = [];
});

/** The proxied connections that sent `stats`. */
const statsConns = (): number[] =>
  events.filter((e) => e.direction === "up" && text(e.chunk).startsWith("stats")).map((e) => e.conn);
/** Whether the client closed proxied connection `conn`. */
const ended = (conn: number): boolean =>
  events.some((e) => e.conn === conn && e.direction === "up" && e.chunk === undefined);

/** Watch the 2 s timers made (the stats wait's): `pending()` lists those not cleared yet. */
function watchStatsTimers(): { pending(): unknown[]; restore(): void } {
  const made = vi.spyOn(globalThis, "setTimeout");
  const cleared = vi.spyOn(globalThis, "clearTimeout");
  return {
    pending: () => {
      const gone = new Set(cleared.mock.calls.map((c) => c[0] as unknown));
      return made.mock.calls
        .map((c, i) => [c[1], made.mock.results[i]?.value] as const)
        .filter(([ms, t]) => ms === 2_000 && !gone.has(t))
        .map(([, t]) => t);
    },
    restore: () => {
      made.mockRestore();
      cleared.mockRestore();
    },
  };
}

/** Hold `k` with limit 2 on the first server, on a connection of the test's own. */
async function holdLimit2(k: string): Promise<{ close(): void }> {
  const conn = await connect({ port: servers()[0]?.port as number });
  await semAcquire(conn, k, 0, 2);
  return conn;
}

/** Start a limit-3 acquire of `k` through the proxy; resolves once its stats request reached the proxy. */
async function mismatchPending(
  sem: DistributedSemaphore,
  signal?: AbortSignal,
): Promise<{ settled: Promise<unknown>; statsConn: number }> {
  const settled = sem.acquire({ signal }).then(
    () => "acquired",
    (e: unknown) => e,
  );
  await until(() => statsConns().length > 0, 5_000, "the stats request");
  return { settled, statsConn: statsConns()[0] as number };
}

describe("LIMIT_MISMATCH's stats fetch, cut short", () => {
  it("the caller's abort rejects at once with ABORTED, and closes the stats connection", async () => {
    const k = key("abort");
    const holder = await holdLimit2(k);
    const client = new DflockdClient({ servers: [proxy.address] });
    try {
      const ac = new AbortController();
      const { settled, statsConn } = await mismatchPending(client.semaphore(k, 3), ac.signal);
      const t0 = performance.now();
      ac.abort();
      const err = await settled;
      // The stats wait is 2 s: before the fix the abort was seen only once it had passed.
      expect(performance.now() - t0).toBeLessThan(1_000);
      expect(err).not.toBeInstanceOf(LimitMismatchError);
      expect((err as LockError).code).toBe("ABORTED");
      await until(() => ended(statsConn), 1_000, "the stats connection to close");
    } finally {
      client.close();
      holder.close();
    }
  });

  it("the instance's close() settles it at once with the mismatch, without the server's limit, leaving no timer", async () => {
    const k = key("close");
    const holder = await holdLimit2(k);
    const client = new DflockdClient({ servers: [proxy.address] });
    try {
      const sem = client.semaphore(k, 3);
      const timers = watchStatsTimers();
      const { settled, statsConn } = await mismatchPending(sem);
      expect(timers.pending()).toHaveLength(1);
      const t0 = performance.now();
      sem.close();
      // close() leaves no timer: the stats wait's is cleared before it returns.
      expect(timers.pending()).toEqual([]);
      const err = await settled;
      timers.restore();
      expect(performance.now() - t0).toBeLessThan(1_000);
      expect(err).toBeInstanceOf(LimitMismatchError);
      expect(err).toMatchObject({ key: k, limit: 3, serverLimit: undefined });
      await until(() => ended(statsConn), 1_000, "the stats connection to close");
    } finally {
      client.close();
      holder.close();
    }
  });

  it("the client's close() settles it at once, and leaves no stats connection or timer", async () => {
    const k = key("client");
    const holder = await holdLimit2(k);
    const client = new DflockdClient({ servers: [proxy.address] });
    try {
      const timers = watchStatsTimers();
      const { settled, statsConn } = await mismatchPending(client.semaphore(k, 3));
      expect(timers.pending()).toHaveLength(1);
      const t0 = performance.now();
      client.close();
      expect(timers.pending()).toEqual([]);
      const err = await settled;
      timers.restore();
      expect(performance.now() - t0).toBeLessThan(1_000);
      expect(err).toMatchObject({ code: "LIMIT_MISMATCH", key: k, limit: 3, serverLimit: undefined });
      await until(() => ended(statsConn), 1_000, "the stats connection to close");
    } finally {
      client.close();
      holder.close();
    }
  });
});

describe("LIMIT_MISMATCH's stats fetch, shared", () => {
  it("a burst of mismatches on one server asks its stats once", async () => {
    const k = key("burst");
    const holder = await holdLimit2(k);
    const client = new DflockdClient({ servers: [proxy.address] });
    try {
      const errors = await Promise.all(
        Array.from({ length: 5 }, () =>
          client
            .semaphore(k, 3)
            .acquire()
            .catch((e: unknown) => e),
        ),
      );
      for (const err of errors) expect(err).toMatchObject({ code: "LIMIT_MISMATCH", serverLimit: undefined });
      expect(statsConns()).toHaveLength(1);
    } finally {
      client.close();
      holder.close();
    }
  });
});

describe("LIMIT_MISMATCH names the server the attempt talked to", () => {
  it("not the one a stateful sharding strategy picks next", async () => {
    const [a, b] = servers() as [DflockdServer, DflockdServer];
    const k = key("strategy");
    const conn = await connect({ port: a.port });
    await semAcquire(conn, k, 0, 2);
    let calls = 0;
    // The first pick is server A (where the key is held with limit 2); any later pick is B.
    const sem = new DistributedSemaphore({
      key: k,
      limit: 3,
      servers: [a.address, b.address],
      shardingStrategy: () => (calls++ === 0 ? 0 : 1),
    });
    try {
      const err = await sem.acquire().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LimitMismatchError);
      expect(err).toMatchObject({ key: k, limit: 3, server: `127.0.0.1:${a.port}`, serverLimit: 2 });
    } finally {
      sem.close();
      conn.close();
    }
  });
});

describe("shared fetch", () => {
  it("one caller aborting leaves the other's fetch (same client)", async () => {
    const k = key("share");
    const holder = await connect({ port: servers()[0]?.port as number });
    await semAcquire(holder, k, 0, 2);
    const client = new DflockdClient({ servers: [slowStats.address] });
    try {
      const ac = new AbortController();
      const a = client
        .semaphore(k, 3)
        .acquire({ signal: ac.signal })
        .catch((e: unknown) => e);
      const b = client
        .semaphore(k, 3)
        .acquire()
        .catch((e: unknown) => e);
      await until(() => statsConns().length > 0, 5000, "stats");
      ac.abort();
      expect(((await a) as { code: string }).code).toBe("ABORTED");
      const eb = await b;
      expect(eb).toBeInstanceOf(LimitMismatchError);
      expect(eb).toMatchObject({ serverLimit: 2 });
      expect(statsConns()).toHaveLength(1);
    } finally {
      client.close();
      holder.close();
    }
  });
  it("another client's close leaves the other's fetch", async () => {
    const k = key("share2");
    const holder = await connect({ port: servers()[0]?.port as number });
    await semAcquire(holder, k, 0, 2);
    const c1 = new DflockdClient({ servers: [slowStats.address] });
    const c2 = new DflockdClient({ servers: [slowStats.address] });
    try {
      const a = c1
        .semaphore(k, 3)
        .acquire()
        .catch((e: unknown) => e);
      const b = c2
        .semaphore(k, 3)
        .acquire()
        .catch((e: unknown) => e);
      await until(() => statsConns().length > 0, 5000, "stats");
      c1.close();
      expect(await a).toMatchObject({ serverLimit: undefined, code: "LIMIT_MISMATCH" });
      expect(await b).toMatchObject({ serverLimit: 2 });
    } finally {
      c1.close();
      c2.close();
      holder.close();
    }
  });
});
