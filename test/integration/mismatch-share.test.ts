/**
 * The stats fetch that tells a LIMIT_MISMATCH's server limit is shared per
 * server by the mismatches that arrive while it runs: one caller giving up
 * (its signal, its client's close()) leaves the others' fetch alone. A proxy
 * holds each `stats` request 1.5 s, so both mismatches land while it runs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ChunkEvent, type FaultProxy, startProxy } from "../faults/proxy.ts";
import { connect, DflockdClient, LimitMismatchError, semAcquire } from "../support/client.ts";
import { key, until, useDflockds } from "./helpers.ts";

const servers = useDflockds(1);
const text = (c: Uint8Array | undefined): string => (c === undefined ? "" : new TextDecoder().decode(c));
let proxy: FaultProxy;
let events: ChunkEvent[] = [];
beforeAll(async () => {
  proxy = await startProxy({ port: servers()[0]?.port as number });
  proxy.observe((e) => {
    events.push(e);
  });
  proxy.setDelay("up", (chunk) => (text(chunk).startsWith("stats") ? 1500 : 0));
});
afterAll(() => proxy.close());
afterEach(() => {
  events = [];
});
const statsConns = (): number[] =>
  events.filter((e) => e.direction === "up" && text(e.chunk).startsWith("stats")).map((e) => e.conn);

describe("shared fetch", () => {
  it("one caller aborting leaves the other's fetch (same client)", async () => {
    const k = key("share");
    const holder = await connect({ port: servers()[0]?.port as number });
    await semAcquire(holder, k, 0, 2);
    const client = new DflockdClient({ servers: [proxy.address] });
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
    const c1 = new DflockdClient({ servers: [proxy.address] });
    const c2 = new DflockdClient({ servers: [proxy.address] });
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
