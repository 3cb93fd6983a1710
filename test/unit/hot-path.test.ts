/**
 * The success path builds no error: every class of the library's errors
 * extends the global `Error`, so this file replaces `Error` with a counting
 * subclass before it loads the library (only dynamic imports below), then
 * runs acquire/release, withLock, enqueue/wait, semaphores and a new
 * instance per operation (closed after its release) against a
 * scripted peer that always grants. A failing acquire is counted too, to
 * show that the counter sees the library's errors.
 */
import { beforeAll, describe, expect, it } from "vitest";

let constructed = 0;
const OriginalError = globalThis.Error;
class CountingError extends OriginalError {
  constructor(...args: ConstructorParameters<ErrorConstructor>) {
    super(...args);
    constructed++;
  }
}

type Lib = typeof import("../../src/primitive.ts") & typeof import("../../src/pool.ts");
let lib: Lib;
let support: typeof import("../support/scripted-peer.ts");

beforeAll(async () => {
  globalThis.Error = CountingError as ErrorConstructor;
  try {
    lib = { ...(await import("../../src/primitive.ts")), ...(await import("../../src/pool.ts")) };
    support = await import("../support/scripted-peer.ts");
  } finally {
    globalThis.Error = OriginalError;
  }
});

function alwaysGrant(): void {
  const rt = support.useScriptedRuntime();
  let n = 0;
  rt.onPeer = (peer) => {
    peer.onRequest = ([cmd]) => {
      if (cmd === "l" || cmd === "sl") peer.send(`ok ${support.token(++n)} 30\n`);
      else if (cmd === "e" || cmd === "se") peer.send(`acquired ${support.token(++n)} 30\n`);
      else peer.send("ok\n");
    };
  };
}

describe("the success path", () => {
  it("builds no Error in 200 cycles of each form", async () => {
    alwaysGrant();
    const lock = new lib.DistributedLock({ key: "k", leaseTtlS: 30 });
    const sem = new lib.DistributedSemaphore({ key: "s", limit: 2, leaseTtlS: 30 });
    // Warm up: the first use connects (and may build what is built once).
    await lock.acquire();
    await lock.release();
    const before = constructed;
    for (let i = 0; i < 200; i++) {
      await lock.acquire();
      await lock.release();
      await lock.withLock((signal) => signal.aborted);
      await lock.enqueue();
      await lock.wait();
      await lock.release();
      await sem.withLock(() => undefined);
      const once = new lib.DistributedLock({ key: `k${i}`, leaseTtlS: 30 });
      await once.withLock(() => undefined);
      once.close();
    }
    expect(constructed - before).toBe(0);
    lib.sharedPool.closeIdle();
  });

  it("the counter does see the library's errors (a refused connection)", async () => {
    lib.sharedPool.closeIdle();
    const rt = support.useScriptedRuntime();
    rt.refuse = true;
    const before = constructed;
    await new lib.DistributedLock({ key: "k" }).acquire().catch(() => undefined);
    expect(constructed - before).toBeGreaterThan(0);
  });
});
