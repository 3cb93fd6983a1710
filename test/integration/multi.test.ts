/**
 * Several keys at once (`client.holdAll()`, `client.withLocks()`) against a
 * dflockd, through the public API: the canonical order (by server, then by
 * key) as the servers see the requests arrive, release in reverse, nothing
 * sent for bad input, rollback when a later key cannot be had, one budget for
 * every key, and a loss of one key aborting the one signal.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FaultProxy, startProxy } from "../faults/proxy.ts";
import { startDflockd } from "../harness/dflockd.ts";
import {
  AcquireTimeoutError,
  DflockdClient,
  HeldLocks,
  InvalidArgumentError,
  type LockError,
  LockLostError,
  type LockSpec,
  stableHashShard,
  stats,
} from "../support/client.ts";
import { elapse, key, until, useDflockds } from "./helpers.ts";

const servers = useDflockds(2);

/** A request as a server received it: which server (its index), the command and the key. */
interface Seen {
  readonly server: number;
  readonly cmd: string;
  readonly key: string;
  readonly arg: string;
}

/**
 * A proxy in front of each server, recording every request (three lines) in
 * the order it reaches the proxies; `onRequest` is told of each as it comes.
 */
async function recorded(onRequest?: (r: Seen) => void): Promise<{
  proxies: FaultProxy[];
  log: Seen[];
  close(): Promise<void>;
}> {
  const proxies = await Promise.all(servers().map((s) => startProxy({ host: s.host, port: s.port })));
  const log: Seen[] = [];
  proxies.forEach((p, server) => {
    const pending = new Map<number, string>();
    const decoder = new TextDecoder();
    p.observe((e) => {
      if (e.direction !== "up" || e.chunk === undefined) return;
      let text = (pending.get(e.conn) ?? "") + decoder.decode(e.chunk);
      for (;;) {
        const lines = text.split("\n");
        if (lines.length < 4) break;
        const [cmd, k, arg] = lines as [string, string, string];
        const seen = { server, cmd, key: k, arg };
        log.push(seen);
        onRequest?.(seen);
        text = lines.slice(3).join("\n");
      }
      pending.set(e.conn, text);
    });
  });
  return { proxies, log, close: async () => void (await Promise.all(proxies.map((p) => p.close()))) };
}

const ACQUIRE = new Set(["l", "sl", "e", "se"]);
const RELEASE = new Set(["r", "sr"]);
/** The keys in the order of their first acquire request, and of their release requests. */
function orders(log: Seen[]): { acquired: string[]; released: string[] } {
  const acquired: string[] = [];
  for (const r of log) if (ACQUIRE.has(r.cmd) && !acquired.includes(r.key)) acquired.push(r.key);
  return { acquired, released: log.filter((r) => RELEASE.has(r.cmd)).map((r) => r.key) };
}

/**
 * Keys `prefix-a`, `prefix-b`, ... until `perServer` go to each of two
 * servers (by `stableHashShard`), the smallest of them to server 1.
 */
function keysOnBoth(prefix: string, perServer: number): string[] {
  const out: string[] = [];
  const count: [number, number] = [0, 0];
  for (let c = 0; c < 26 && (count[0] < perServer || count[1] < perServer); c++) {
    const k = `${prefix}-${String.fromCharCode(97 + c)}`;
    const s = stableHashShard(k, 2) as 0 | 1;
    // The first key goes to server 1: ordered by key alone, it would come first.
    if (out.length === 0 && s === 0) continue;
    if (count[s] < perServer) {
      count[s]++;
      out.push(k);
    }
  }
  return out;
}

/** The address of this file's server `i`. */
function addr(i: number): [string, number] {
  const s = servers()[i];
  if (s === undefined) throw new Error(`no server ${i}`);
  return s.address;
}

/** The address of proxy `i`. */
function proxyAt(rec: { proxies: FaultProxy[] }, i: number): [string, number] {
  const p = rec.proxies[i];
  if (p === undefined) throw new Error(`no proxy ${i}`);
  return p.address;
}

/** A server's stats. */
function statsAt(at: readonly [string, number]) {
  return stats({ host: at[0], port: at[1] });
}

/** Whether `k` is free now on `server` (a lock, tried once by another client). */
async function isFree(at: readonly [string, number], k: string): Promise<boolean> {
  const other = new DflockdClient({ servers: [at] });
  try {
    const lock = other.lock(k);
    const got = await lock.acquire({ timeoutS: 0 });
    if (got) await lock.release();
    return got;
  } finally {
    other.close();
  }
}

describe("canonical order", () => {
  it("takes keys by server, then by key, mixed with semaphore slots; await using releases them in reverse", async () => {
    const rec = await recorded();
    const client = new DflockdClient({ servers: rec.proxies.map((p) => p.address) });
    try {
      const names = keysOnBoth(key("order"), 3);
      const spec: LockSpec[] = names.map((k, i) => (i % 3 === 1 ? { key: k, limit: 2 } : k));
      // Expected: server 0's keys, then server 1's, each in code-unit order.
      const expected = [...names].sort((a, b) => stableHashShard(a, 2) - stableHashShard(b, 2) || (a < b ? -1 : 1));
      // The test means something: by key alone, or in the given order, would differ.
      expect(expected).not.toEqual([...names].sort());
      expect(expected).not.toEqual(names);
      {
        await using held = await client.holdAll(spec.reverse(), { timeoutS: 10, leaseTtlS: 20 });
        expect(held).toBeInstanceOf(HeldLocks);
        expect(held.locks.map((h) => h.key)).toEqual(expected);
        expect(held.locks.every((h) => h.leaseTtl === 20)).toBe(true);
        expect(held.signal.aborted).toBe(false);
        held.assertHeld();
        const semKey = names[1] as string;
        expect(held.get(semKey)?.key).toBe(semKey);
        // Each key is held on the server it shards to, a semaphore as a semaphore.
        const all = [...(await statsAt(addr(0))).semaphores, ...(await statsAt(addr(1))).semaphores];
        expect(all.find((s) => s.key === semKey)?.limit).toBe(2);
      }
      const { acquired, released } = orders(rec.log);
      expect(acquired).toEqual(expected);
      expect(released).toEqual([...expected].reverse());
      // Semaphore slots went out as semaphore requests.
      expect(rec.log.some((r) => r.cmd === "sl" && r.key === names[1])).toBe(true);
    } finally {
      client.close();
      await rec.close();
    }
  });

  it("follows the client's own sharding strategy", async () => {
    const [a, b] = [key("z-first"), key("a-second")];
    // `a` (the greater key) goes to server 0, `b` to server 1: by server first.
    const client = new DflockdClient({
      servers: servers().map((s) => s.address),
      shardingStrategy: (k) => (k === a ? 0 : 1),
    });
    try {
      await client.withLocks([b, a], async () => {});
      const held = await client.holdAll([b, a]);
      expect(held.locks.map((h) => h.key)).toEqual([a, b]);
      await held.release();
      expect(held.released).toBe(true);
      await held.release(); // idempotent
    } finally {
      client.close();
    }
  });
});

describe("bad input", () => {
  it("is refused with InvalidArgumentError before any byte is sent", async () => {
    const rec = await recorded();
    const client = new DflockdClient({ servers: rec.proxies.map((p) => p.address) });
    const ok = key("ok");
    const bad: Array<[unknown, unknown?]> = [
      [[]],
      ["not-an-array"],
      [[ok, ok]],
      [[ok, { key: ok, limit: 2 }]],
      [[ok, "has space"]],
      [[ok, ""]],
      [[ok, { key: "s", limit: 0 }]],
      [[ok, { key: "s", limit: 1.5 }]],
      [[ok, { key: "s" }]],
      [[ok, { key: "s", limit: 2, extra: 1 }]],
      [[ok, 42]],
      [[ok, null]],
      [[ok], { timeoutS: 1.5 }],
      [[ok], { timeoutS: -1 }],
      [[ok], { acquireTimeoutS: 1 }],
      [[ok], { leaseTtlS: 0 }],
      [[ok], { servers: [["h", 1]] }],
      [[ok], { signal: "soon" }],
      [[ok], { timeout: 5 }],
      [[ok], null],
    ];
    try {
      for (const [keys, options] of bad) {
        const err = await client.holdAll(keys as LockSpec[], options as never).catch((e: unknown) => e);
        expect(err, JSON.stringify([keys, options])).toBeInstanceOf(InvalidArgumentError);
        const err2 = await client.withLocks(keys as LockSpec[], () => 1, options as never).catch((e: unknown) => e);
        expect(err2, JSON.stringify([keys, options])).toBeInstanceOf(InvalidArgumentError);
      }
      const dup = await client.holdAll([ok, "x", ok]).catch((e: unknown) => e);
      expect((dup as Error).message).toContain(`"${ok}" is given twice`);
      const badKey = await client.holdAll([ok, "has space"]).catch((e: unknown) => e);
      expect((badKey as Error).message).toMatch(/keys\[1\].*space/);
      const noFn = await client.withLocks([ok], "fn" as never).catch((e: unknown) => e);
      expect(noFn).toBeInstanceOf(InvalidArgumentError);
      // An aborted signal: ABORTED, nothing sent either.
      const aborted = await client.holdAll([ok], { signal: AbortSignal.abort() }).catch((e: unknown) => e);
      expect((aborted as LockError).code).toBe("ABORTED");
      expect(rec.log).toEqual([]);
      expect(rec.proxies.map((p) => p.connections())).toEqual([0, 0]);
    } finally {
      client.close();
      await rec.close();
    }
  });
});

describe("every key or none", () => {
  let blocker: DflockdClient;
  beforeAll(() => {
    blocker = new DflockdClient({ servers: [addr(0)] });
  });
  afterAll(() => blocker.close());

  it("a later key not had in time: the keys taken are released first, and the error names the key", async () => {
    const rec = await recorded();
    const client = new DflockdClient({ servers: [proxyAt(rec, 0)] });
    const p = key("rollback");
    const [a, b, c, d] = [`${p}-a`, `${p}-b`, `${p}-c`, `${p}-d`];
    const busy = blocker.lock(c);
    expect(await busy.acquire()).toBe(true);
    try {
      const started = performance.now();
      const err = await client.holdAll([d, c, { key: b, limit: 3 }, a], { timeoutS: 1 }).catch((e: unknown) => e);
      const tookMs = performance.now() - started;
      expect(err).toBeInstanceOf(AcquireTimeoutError);
      expect((err as AcquireTimeoutError).key).toBe(c);
      expect((err as Error).message).toContain(`"${c}"`);
      expect((err as Error).message).toMatch(/key 3 of 4; the 2 already held were released first/);
      expect(tookMs).toBeGreaterThanOrEqual(900);
      // a and b were released before the call rejected; d was never asked for.
      const { acquired, released } = orders(rec.log);
      expect(acquired).toEqual([a, b, c]);
      expect(released).toEqual([b, a]);
      expect(await isFree(addr(0), a)).toBe(true);
      const semHolders = (await statsAt(addr(0))).semaphores.find((s) => s.key === b);
      expect(semHolders?.holders ?? 0).toBe(0);
    } finally {
      await busy.release();
      client.close();
      await rec.close();
    }
  });

  it("one budget for every key: time spent on an earlier key counts against the later ones", async () => {
    const p = key("budget");
    const [a, b] = [`${p}-a`, `${p}-b`];
    const first = blocker.lock(a);
    const second = blocker.lock(b);
    expect(await first.acquire()).toBe(true);
    expect(await second.acquire()).toBe(true);
    // `a` frees 2 s after the blocking request for it arrives; `b` stays busy.
    let freed: Promise<void> | undefined;
    const rec = await recorded((r) => {
      if (r.cmd === "l" && r.key === a && r.arg.split(" ")[0] !== "0")
        freed ??= elapse(2000).then(() => first.release());
    });
    const client = new DflockdClient({ servers: [proxyAt(rec, 0)] });
    try {
      const started = performance.now();
      const err = await client.holdAll([b, a], { timeoutS: 3 }).catch((e: unknown) => e);
      const tookS = (performance.now() - started) / 1000;
      expect(err).toBeInstanceOf(AcquireTimeoutError);
      expect((err as AcquireTimeoutError).key).toBe(b);
      expect((err as Error).message).toMatch(/timed out after 3s/);
      // Had `b` been given a budget of its own (3 s), the call would have taken 5 s at least.
      expect(tookS).toBeGreaterThanOrEqual(2.9);
      expect(tookS).toBeLessThan(4.5);
      await freed;
      expect(await isFree(addr(0), a)).toBe(true);
    } finally {
      await second.release();
      client.close();
      await rec.close();
    }
  });

  it("the signal aborted while waiting for a later key: the keys taken are released, ABORTED", async () => {
    const p = key("abort");
    const [a, b, c] = [`${p}-a`, `${p}-b`, `${p}-c`];
    const busy = blocker.lock(c);
    expect(await busy.acquire()).toBe(true);
    const ac = new AbortController();
    const rec = await recorded((r) => {
      if (r.cmd === "l" && r.key === c && r.arg.split(" ")[0] !== "0") ac.abort(new Error("enough"));
    });
    const client = new DflockdClient({ servers: [proxyAt(rec, 0)] });
    try {
      const err = await client
        .withLocks([c, b, a], () => "ran", { timeoutS: 30, signal: ac.signal })
        .catch((e: unknown) => e);
      expect((err as LockError).code).toBe("ABORTED");
      expect(orders(rec.log).released).toEqual([b, a]);
      expect(await isFree(addr(0), a)).toBe(true);
      expect(await isFree(addr(0), b)).toBe(true);
    } finally {
      await busy.release();
      client.close();
      await rec.close();
    }
  });

  it("client.close() while a later key is awaited: ABORTED, and nothing stays held", async () => {
    const p = key("close");
    const [a, b] = [`${p}-a`, `${p}-b`];
    const busy = blocker.lock(b);
    expect(await busy.acquire()).toBe(true);
    const client = new DflockdClient({ servers: [addr(0)] });
    try {
      const pending = client.holdAll([a, b], { timeoutS: 30 }).catch((e: unknown) => e);
      await until(
        async () => (await statsAt(addr(0))).locks.some((l) => l.key === b && l.waiters > 0),
        10_000,
        "a waiter on b",
      );
      client.close();
      expect(((await pending) as LockError).code).toBe("ABORTED");
      // close() closed a's connection: the server frees it when it sees the disconnect.
      await until(() => isFree(addr(0), a), 10_000, "a freed");
    } finally {
      await busy.release();
      client.close();
    }
  });

  it("withLocks: fn's error is rethrown after every key is released", async () => {
    const client = new DflockdClient({ servers: servers().map((s) => s.address) });
    const names = keysOnBoth(key("throw"), 1);
    try {
      const err = await client
        .withLocks(names, () => {
          throw new Error("boom");
        })
        .catch((e: unknown) => e);
      expect((err as Error).message).toBe("boom");
      for (const k of names) expect(await isFree(addr(stableHashShard(k, 2)), k)).toBe(true);
      expect(await client.withLocks(names, (signal) => (signal.aborted ? 0 : 7))).toBe(7);
    } finally {
      client.close();
    }
  });
});

describe("a loss of one key", () => {
  /** Two servers of this test's own; the second one is killed. `k1` goes to it, every other key to the first. */
  async function twoServers(k1: string) {
    const [s0, s1] = await Promise.all([startDflockd(), startDflockd()]);
    const client = new DflockdClient({
      servers: [s0.address, s1.address],
      shardingStrategy: (k) => (k === k1 ? 1 : 0),
    });
    return {
      s0,
      s1,
      client,
      async stop() {
        client.close();
        await Promise.all([s0.stop(), s1.stop()]);
      },
    };
  }

  it("aborts the one signal with its LockLostError; the others stay held until release(), which reports the loss", async () => {
    const p = key("loss");
    const [a, b, k1] = [`${p}-a`, `${p}-b`, `${p}-z`];
    const t = await twoServers(k1);
    try {
      const held = await t.client.holdAll([k1, b, { key: a, limit: 2 }], { timeoutS: 10 });
      expect(held.locks.map((h) => h.key)).toEqual([a, b, k1]);
      const aborted = new Promise<unknown>((resolve) =>
        held.signal.addEventListener("abort", () => resolve(held.signal.reason), { once: true }),
      );
      await t.s1.kill();
      const reason = await aborted;
      expect(reason).toBeInstanceOf(LockLostError);
      expect((reason as LockLostError).key).toBe(k1);
      expect(() => held.assertHeld()).toThrow(LockLostError);
      // The keys on the live server are still held, by us.
      expect(held.locks[0]?.signal.aborted).toBe(false);
      expect(held.locks[1]?.signal.aborted).toBe(false);
      const during = await statsAt(t.s0.address);
      expect(during.locks.map((l) => l.key)).toEqual([b]);
      expect(during.semaphores.find((s) => s.key === a)?.holders).toBe(1);
      const err = await held.release().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockLostError);
      expect((err as LockLostError).key).toBe(k1);
      expect(held.released).toBe(true);
      // Reported once: a second release (as at the end of an `await using` scope) does nothing.
      await held[Symbol.asyncDispose]();
      expect(await isFree(t.s0.address, b)).toBe(true);
    } finally {
      await t.stop();
    }
  });

  it("while a later key is awaited: the taking stops at once, the others are released, the LockLostError rejects", async () => {
    const p = key("loss-early");
    const [k0, a, b] = [`${p}-k0`, `${p}-a`, `${p}-b`];
    // k0 alone goes to the first server, which is killed while `b` (busy) is awaited on the second.
    const [s0, s1] = await Promise.all([startDflockd(), startDflockd()]);
    const client = new DflockdClient({
      servers: [s0.address, s1.address],
      shardingStrategy: (k) => (k === k0 ? 0 : 1),
    });
    const blocker = new DflockdClient({ servers: [s1.address] });
    try {
      const busy = blocker.lock(b);
      expect(await busy.acquire()).toBe(true);
      const started = performance.now();
      const pending = client.holdAll([b, a, k0], { timeoutS: 30 }).catch((e: unknown) => e);
      await until(
        async () => (await statsAt(s1.address)).locks.some((l) => l.key === b && l.waiters > 0),
        10_000,
        "a waiter on b",
      );
      await s0.kill();
      const err = await pending;
      expect(err).toBeInstanceOf(LockLostError);
      expect((err as LockLostError).key).toBe(k0);
      expect(performance.now() - started).toBeLessThan(20_000);
      expect(await isFree(s1.address, a)).toBe(true);
      await busy.release();
    } finally {
      client.close();
      blocker.close();
      await Promise.all([s0.stop(), s1.stop()]);
    }
  });

  it("withLocks: fn's signal aborts, and a normal return rejects with the LockLostError", async () => {
    const p = key("loss-fn");
    const [a, k1] = [`${p}-a`, `${p}-z`];
    const t = await twoServers(k1);
    try {
      const err = await t.client
        .withLocks([a, k1], async (signal) => {
          const lost = new Promise<unknown>((resolve) =>
            signal.addEventListener("abort", () => resolve(signal.reason), { once: true }),
          );
          await t.s1.kill();
          expect(await lost).toBeInstanceOf(LockLostError);
          return "done";
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockLostError);
      expect((err as LockLostError).key).toBe(k1);
      expect(await isFree(t.s0.address, a)).toBe(true);
    } finally {
      await t.stop();
    }
  });
});
