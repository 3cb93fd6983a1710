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
import { tick, useGatedPoolTest } from "../support/pool.ts";
import type { ScriptedRuntime } from "../support/scripted-peer.ts";

const gated = useGatedPoolTest(7800);
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = gated.rt();
});
const { lock, open } = gated;

/**
 * "a" opening the server's first connection, its own, and "x" waiting for one
 * opened for sharing, which it keeps going while "b" leaves it and comes back.
 * `done()`: open the gate, and see both through.
 */
function beside(): { done: () => Promise<void> } {
  sharedPool.shareAfter = 1;
  const a = lock("a");
  const own = a.acquire();
  const x = lock("x");
  const kept = x.acquire();
  return {
    async done() {
      open();
      expect(await own).toBe(true);
      expect(await kept).toBe(true);
      await Promise.all([a.release(), x.release()]);
    },
  };
}

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
    const others = beside();
    const b = lock("b");
    const first = b.acquire();
    b.close();
    const second = b.acquire();
    await expect(first).rejects.toMatchObject({ code: "ABORTED" });
    b.close();
    // The first wait's end forgot the second's: this close() found nothing to leave.
    expect(await settled(second)).toBe(true);
    await expect(second).rejects.toMatchObject({ code: "ABORTED" });
    await others.done();
  });

  it("a client's close() cancels the connect, rather than leave it to open", async () => {
    sharedPool.shareAfter = 1;
    const client = new DflockdClient({ servers: gated.servers(), leaseTtlS: 10 });
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
    const others = beside();
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
    await others.done();
  });
});
