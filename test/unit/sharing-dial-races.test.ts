/**
 * Races of connections opened for sharing (src/sharing-dial.ts), found in
 * review: an instance that leaves a wait and joins the same connection being
 * opened again in the same tick (close() or an un-awaited release(), then
 * acquire()) must still be able to leave the second wait, and a client's
 * close() must then cancel the connect. Through the scripted in-memory peer
 * with fake timers; every test talks to a server port of its own.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { serve, tick, usePoolTest } from "../support/pool.ts";
import type { ScriptedRuntime } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
let port = 7800;
let servers: [string, number][];
let open: () => void;
beforeEach(() => {
  rt = runtime();
  servers = [["127.0.0.1", ++port]];
  rt.onPeer = serve;
  rt.gate = new Promise<void>((resolve) => {
    open = () => {
      rt.gate = undefined;
      resolve();
    };
  });
});

const lock = (key: string, options: object = {}): DistributedLock =>
  new DistributedLock({ key, leaseTtlS: 10, servers, ...options });

/** Whether `p` has settled (after the microtasks now due). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await tick();
  return done;
}

describe("an instance that joins the same connection again after leaving it", () => {
  it("close() still ends its second wait at once", async () => {
    sharedPool.shareAfter = 1;
    const a = lock("a");
    const own = a.acquire();
    // Keeps the connection being opened for sharing going.
    const x = lock("x");
    const kept = x.acquire();
    const b = lock("b");
    const first = b.acquire();
    b.close();
    const second = b.acquire();
    await expect(first).rejects.toMatchObject({ code: "ABORTED" });
    b.close();
    // The first wait's end forgot the second's: this close() found nothing to leave.
    expect(await settled(second)).toBe(true);
    await expect(second).rejects.toMatchObject({ code: "ABORTED" });
    open();
    expect(await own).toBe(true);
    expect(await kept).toBe(true);
    await Promise.all([a.release(), x.release()]);
  });

  it("a client's close() cancels the connect, rather than leave it to open", async () => {
    sharedPool.shareAfter = 1;
    const client = new DflockdClient({ servers, leaseTtlS: 10 });
    const own = client.lock("a").acquire();
    const kept = client.lock("x").acquire();
    const b = client.lock("b");
    const first = b.acquire();
    b.close();
    const second = b.acquire();
    await expect(first).rejects.toMatchObject({ code: "ABORTED" });
    client.close();
    await expect(own).rejects.toMatchObject({ code: "ABORTED" });
    await expect(kept).rejects.toMatchObject({ code: "ABORTED" });
    expect(await settled(second)).toBe(true);
    await expect(second).rejects.toMatchObject({ code: "ABORTED" });
    // Every connect was cancelled: none opens once the gate does.
    open();
    await tick();
    expect(rt.peers.every((p) => p.closedByClient)).toBe(true);
  });
});

describe("release() then acquire() while waiting for a connection opened for sharing", () => {
  it("(not awaited) the second wait can still be ended by close()", async () => {
    sharedPool.shareAfter = 1;
    const a = lock("a");
    const own = a.acquire();
    const x = lock("x");
    const kept = x.acquire();
    const b = lock("b");
    const first = b.acquire();
    first.catch(() => {});
    // Not awaited: the instance is free at once, and a retry loop may start again in the same tick.
    const released = b.release();
    const second = b.acquire();
    await released;
    await expect(first).rejects.toMatchObject({ code: "ABORTED" });
    b.close();
    expect(await settled(second)).toBe(true);
    await expect(second).rejects.toMatchObject({ code: "ABORTED" });
    open();
    expect(await own).toBe(true);
    expect(await kept).toBe(true);
    await Promise.all([a.release(), x.release()]);
  });
});
