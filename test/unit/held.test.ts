/**
 * hold() and `await using`: a holding released at the end of its scope.
 * Against a scripted peer, with fake timers.
 */
import { describe, expect, it, vi } from "vitest";
import { AcquireTimeoutError, LockLostError } from "../../src/errors.ts";
import { HeldLock } from "../../src/held.ts";
import { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import { useLockTest } from "../support/lock-test.ts";
import { type PeerEnd, token } from "../support/scripted-peer.ts";

const runtime = useLockTest();

/** Answer every request as a free server would, numbering the grants (fence 7). */
function serve(peer: PeerEnd): void {
  let n = 0;
  peer.onRequest = ([cmd]) => peer.send(cmd === "l" || cmd === "sl" ? `ok ${token(++n)} 10 7\n` : "ok\n");
}

describe("hold() with await using", () => {
  it("holds for the scope and releases when it ends normally", async () => {
    const lock = new DistributedLock({ key: "invoices" });
    const inside = async (): Promise<string> => {
      await using held = await lock.hold();
      expect(held).toBeInstanceOf(HeldLock);
      expect(held.key).toBe("invoices");
      expect(held.token).toBe(token(1));
      expect(held.fence).toBe("7");
      expect(held.leaseTtl).toBe(10);
      expect(held.signal.aborted).toBe(false);
      expect(lock.state).toBe("held");
      return "done";
    };
    const p = inside();
    const peer = await runtime().peer();
    serve(peer);
    expect(await p).toBe("done");
    expect(peer.requests.map((r) => r[0])).toEqual(["l", "r"]);
    expect(lock.state).toBe("released");
  });

  it("releases when the scope throws, and the scope's error is the one seen", async () => {
    const sem = new DistributedSemaphore({ key: "encoders", limit: 2 });
    const inside = async (): Promise<void> => {
      await using held = await sem.hold();
      expect(held.key).toBe("encoders");
      throw new Error("work failed");
    };
    const p = inside().catch((e: unknown) => e);
    const peer = await runtime().peer();
    serve(peer);
    expect(((await p) as Error).message).toBe("work failed");
    expect(peer.requests.map((r) => r[0])).toEqual(["sl", "sr"]);
    expect(sem.state).toBe("released");
  });

  it("disposal reports a loss during the scope with LockLostError", async () => {
    const lock = new DistributedLock({ key: "k" });
    const inside = async (): Promise<boolean> => {
      await using held = await lock.hold();
      peer.hangUp();
      await vi.advanceTimersByTimeAsync(0);
      return held.signal.aborted;
    };
    let peer!: PeerEnd;
    const p = inside().catch((e: unknown) => e);
    peer = await runtime().peer();
    serve(peer);
    expect(await p).toBeInstanceOf(LockLostError);
  });

  it("release() by hand ends it once; later calls and disposal do nothing", async () => {
    const lock = new DistributedLock({ key: "k" });
    const h = lock.hold();
    const peer = await runtime().peer();
    serve(peer);
    const held = await h;
    await held.release();
    expect(held.released).toBe(true);
    await held.release();
    await held[Symbol.asyncDispose]();
    expect(peer.requests.map((r) => r[0])).toEqual(["l", "r"]);
  });

  it("takes turns with withLock() and other hold() callers", async () => {
    const lock = new DistributedLock({ key: "k" });
    const order: string[] = [];
    const first = lock.hold();
    const second = lock.withLock(() => order.push("withLock"));
    const peer = await runtime().peer();
    serve(peer);
    const held = await first;
    order.push("hold");
    await vi.advanceTimersByTimeAsync(10);
    expect(order).toEqual(["hold"]);
    await held.release();
    await second;
    expect(order).toEqual(["hold", "withLock"]);
  });

  it("a timeout is an AcquireTimeoutError, and the turn passes on", async () => {
    const lock = new DistributedLock({ key: "k" });
    const h = lock.hold({ timeoutS: 0 }).catch((e: unknown) => e);
    const peer = await runtime().peer();
    await peer.nextRequest(1);
    peer.send("timeout\n");
    expect(await h).toBeInstanceOf(AcquireTimeoutError);
    serve(peer);
    const held = await lock.hold();
    await held.release();
  });
});
