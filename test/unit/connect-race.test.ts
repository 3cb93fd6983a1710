/**
 * A close() at any microtask of an acquire that opens a connection: the
 * acquire rejects with a LockError, and no socket is left open.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { LockError } from "../../src/errors.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { later, useLockTest } from "../support/lock-test.ts";
import type { ScriptedRuntime } from "../support/scripted-peer.ts";

const runtime = useLockTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

describe("close() while a new connection is being attached", () => {
  it("acquire() rejects with a LockError and leaves no connection open, at any microtask", async () => {
    const bad: string[] = [];
    for (let depth = 0; depth < 40; depth++) {
      const before = rt.peers.length;
      const lock = new DistributedLock({ key: `k${depth}`, leaseTtlS: 10 });
      const p = lock.acquire().catch((e: unknown) => e);
      const closed = later(depth, () => lock.close());
      const result = await p;
      await closed;
      const opened = rt.peers.slice(before);
      const open = opened.filter((peer) => !peer.closedByClient && !peer.hungUp);
      if (!(result instanceof LockError) || open.length > 0) {
        bad.push(
          `depth ${depth}: ${String(result)}; open sockets ${open.length}; sent ${JSON.stringify(opened.map((x) => x.requests))}`,
        );
      }
      for (const peer of open) peer.hangUp();
    }
    expect(bad).toEqual([]);
  });
});
