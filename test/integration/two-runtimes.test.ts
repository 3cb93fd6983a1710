/**
 * Two runtimes in one process, each given explicitly to its own client:
 * both take and release locks against one server, and each client's
 * connections go through its own runtime (each runtime here is wrapped to
 * count the connects it is asked for). On Node: nodeRuntime and a second
 * runtime of node:net; on Bun: bunRuntime and nodeRuntime; on Deno:
 * denoRuntime and nodeRuntime (node:net works there: this is about the
 * explicit choice, not a recommendation).
 */
import { afterEach, describe, expect, it } from "vitest";
import { bunRuntime } from "../../adapters/bun/index.ts";
import { denoRuntime } from "../../adapters/deno/index.ts";
import { nodeRuntime } from "../../adapters/node/index.ts";
import { acquire, connect, DflockdClient, DistributedLock, type Runtime, release, stats } from "../../mod.ts";
import { RUNTIME } from "../support/runtime.ts";
import { key, useDflockd } from "./helpers.ts";

const server = useDflockd();

/** `base`, counting the connects it is asked for. */
interface Counted extends Runtime {
  connects: number;
}

function counted(base: Runtime, name: string): Counted {
  const rt: Counted = {
    ...base,
    name,
    connects: 0,
    connect(request) {
      rt.connects++;
      return base.connect(request);
    },
  };
  return rt;
}

const native: Runtime = RUNTIME === "bun" ? bunRuntime : RUNTIME === "deno" ? denoRuntime : nodeRuntime;
/** On Node, a second runtime: node:net again, as another object (what matters is that each client uses its own). */
const pair = (): [Counted, Counted] => [counted(native, `${native.name}-a`), counted(nodeRuntime, "node-b")];

const clients: DflockdClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

describe(`two runtimes in one process (${RUNTIME}: ${native.name} and node)`, () => {
  it("two clients, each given its own runtime, take and release locks against one server", async () => {
    const [a, b] = pair();
    const one = new DflockdClient({ servers: [server().address], runtime: a, leaseTtlS: 10 });
    const two = new DflockdClient({ servers: [server().address], runtime: b, leaseTtlS: 10 });
    clients.push(one, two);
    const k = key("two-rt");
    await one.lock(k).withLock(async () => {
      expect(await two.lock(k, { acquireTimeoutS: 0 }).acquire()).toBe(false);
    });
    const fromTwo = two.lock(k, { acquireTimeoutS: 5 });
    expect(await fromTwo.acquire()).toBe(true);
    expect(await one.lock(k, { acquireTimeoutS: 0 }).acquire()).toBe(false);
    await fromTwo.release();
    expect(await one.lock(k, { acquireTimeoutS: 5 }).acquire()).toBe(true);
    expect(a.connects).toBeGreaterThan(0);
    expect(b.connects).toBeGreaterThan(0);
    // Each client's connections went through its own runtime: one more connect on a fresh client of `b` only.
    const before = [a.connects, b.connects];
    const three = new DflockdClient({ servers: [server().address], runtime: b });
    clients.push(three);
    await three.lock(key("two-rt")).withLock(async () => {});
    expect([a.connects, b.connects]).toEqual([before[0], (before[1] as number) + 1]);
  });

  it("a DistributedLock, connect() and stats() take the runtime option too", async () => {
    const [a, b] = pair();
    const k = key("two-rt");
    const lock = new DistributedLock({ key: k, servers: [server().address], runtime: a, leaseTtlS: 10 });
    clients.push(new DflockdClient({ runtime: b })); // closed after the test; not used
    expect(await lock.acquire()).toBe(true);
    expect(a.connects).toBe(1);
    const conn = await connect({ host: server().host, port: server().port, runtime: b });
    try {
      expect(b.connects).toBe(1);
      const other = key("two-rt");
      const grant = await acquire(conn, other, 5);
      await release(conn, other, grant.token);
    } finally {
      conn.close();
    }
    const s = await stats({ host: server().host, port: server().port, runtime: b });
    expect(s.locks.some((l) => l.key === k)).toBe(true);
    expect(b.connects).toBe(2);
    await lock.release();
    lock.close();
  });

  it("standalone locks of two runtimes never share a pooled connection", async () => {
    const [a, b] = pair();
    const k = key("pool-rt");
    const one = new DistributedLock({ key: k, servers: [server().address], runtime: a });
    const two = new DistributedLock({ key: k, servers: [server().address], runtime: b });
    try {
      expect(await one.acquire()).toBe(true);
      await one.release();
      // `one`'s connection is idle in the shared pool now, for the same server and settings: not for `b`.
      expect(await two.acquire()).toBe(true);
      await two.release();
    } finally {
      one.close();
      two.close();
    }
    expect([a.connects, b.connects]).toEqual([1, 1]);
  });

  it("a runtime option that is not a runtime is refused before anything is sent", () => {
    expect(() => new DflockdClient({ runtime: {} as Runtime })).toThrow(
      /runtime must be a Runtime \(nodeRuntime, bunRuntime or denoRuntime\), got/,
    );
  });
});
