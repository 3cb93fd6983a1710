/**
 * Servers written as "host:port" strings or [host, port] pairs reach the
 * same server, and a key goes to the same one of several whichever form is
 * used; stats() asks one server in any form; toString() names what is held
 * and where. Against the double by default, or a real dflockd.
 */
import { describe, expect, it } from "vitest";
import {
  DflockdClient,
  DistributedLock,
  DistributedSemaphore,
  InvalidArgumentError,
  stableHashShard,
  stats,
} from "../support/client.ts";
import { key, useDflockds } from "./helpers.ts";

const servers = useDflockds(2);
const text = (i: number): string => `${servers()[i]?.host}:${servers()[i]?.port}`;
const pair = (i: number): [string, number] => servers()[i]?.address as [string, number];

/** Whether `k` is held (as a lock or a semaphore) on server `i`, by its stats asked in the string form. */
async function heldOn(i: number, k: string): Promise<boolean> {
  const s = await stats(text(i));
  return s.locks.some((l) => l.key === k) || s.semaphores.some((l) => l.key === k);
}

describe("servers as strings", () => {
  it("a lock given one server as host:port holds there, and stats() sees it in every form", async () => {
    const k = key("str");
    const lock = new DistributedLock({ key: k, servers: [text(0)], acquireTimeoutS: 2 });
    await lock.withLock(async () => {
      const { host, port } = servers()[0] as { host: string; port: number };
      for (const target of [
        text(0),
        pair(0),
        { server: text(0) },
        { server: pair(0), requestTimeoutMs: 2000 },
        { servers: [text(0)] },
        { host, port },
      ]) {
        const s = await stats(target as never);
        expect(s.locks.map((l) => l.key)).toContain(k);
      }
    });
  });

  it("a key goes to the same server of two whichever form lists them, as stableHashShard says", async () => {
    const asText = [text(0), text(1)];
    const asPairs = [pair(0), pair(1)];
    const mixed = [text(0), pair(1)];
    for (let i = 0; i < 6; i++) {
      const k = key(`shard${i}`);
      const want = stableHashShard(k, 2);
      for (const list of [asText, asPairs, mixed]) {
        const sem = new DistributedSemaphore({ key: k, limit: 3, servers: list, acquireTimeoutS: 2 });
        expect(sem.server).toBe(text(want));
        await sem.withLock(async () => {
          expect(await heldOn(want, k)).toBe(true);
          expect(await heldOn(1 - want, k)).toBe(false);
        });
      }
    }
  });

  it("a client given strings takes several keys on their servers, and names them in toString()", async () => {
    const client = new DflockdClient({ servers: [text(0), text(1)], acquireTimeoutS: 2 });
    try {
      expect(client.servers).toEqual([pair(0), pair(1)]);
      expect(String(client)).toBe(`DflockdClient(servers ${text(0)} ${text(1)}, open)`);
      const keys = [key("a"), key("b"), key("c"), key("d")];
      const held = await client.holdAll(keys, { timeoutS: 2 });
      try {
        for (const h of held.locks) {
          expect(h.server).toBe(text(stableHashShard(h.key, 2)));
          expect(await heldOn(stableHashShard(h.key, 2), h.key)).toBe(true);
          expect(`${h}`).toMatch(new RegExp(`^HeldLock\\(key "${h.key}" on ${h.server}, held(, fence \\d+)?\\)$`));
          expect(`${h}`).not.toContain(h.token);
        }
        expect(`${held}`).toMatch(/^HeldLocks\(4 keys, held: /);
      } finally {
        await held.release();
      }
      expect(`${held}`).toMatch(/^HeldLocks\(4 keys, released: /);
    } finally {
      client.close();
    }
    expect(String(client)).toBe(`DflockdClient(servers ${text(0)} ${text(1)}, closed)`);
  });

  it("toString() follows a lock from released to held and back, without its token", async () => {
    const k = key("line");
    const lock = new DistributedLock({ key: k, servers: [text(1)], acquireTimeoutS: 2 });
    expect(`${lock}`).toBe(`DistributedLock(key "${k}" on ${text(1)}, released)`);
    expect(await lock.acquire()).toBe(true);
    try {
      expect(`${lock}`).toMatch(new RegExp(`^DistributedLock\\(key "${k}" on ${text(1)}, held(, fence \\d+)?\\)$`));
      expect(`${lock}`).not.toContain(lock.token as string);
    } finally {
      await lock.release();
    }
    expect(`${lock}`).toBe(`DistributedLock(key "${k}" on ${text(1)}, released)`);
  });
});

describe("bad servers", () => {
  it("are refused before connecting: a string without a port, two servers for stats()", async () => {
    expect(() => new DistributedLock({ key: "k", servers: [servers()[0]?.host as string] })).toThrow(
      InvalidArgumentError,
    );
    await expect(stats(servers()[0]?.host as string)).rejects.toThrow(/it has no port/);
    await expect(stats({ servers: [text(0), text(1)] })).rejects.toThrow(/exactly one, got 2 servers/);
  });
});
