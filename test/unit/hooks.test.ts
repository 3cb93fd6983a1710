/**
 * The `hooks` option: waiting, acquired, renewed, released and lost, each
 * told once, in order, with where the key went; a hook that throws changes
 * nothing. Against a scripted peer, with fake timers.
 */
import { describe, expect, it, vi } from "vitest";
import { InvalidArgumentError, LockLostError } from "../../src/errors.ts";
import type { LockHooks } from "../../src/hooks.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { useLockTest } from "../support/lock-test.ts";
import { type PeerEnd, token } from "../support/scripted-peer.ts";

const runtime = useLockTest();

/** Hooks that log "name key@server detail" lines. */
function recorder(): { log: string[]; hooks: LockHooks } {
  const log: string[] = [];
  return {
    log,
    hooks: {
      waiting: (e) => log.push(`waiting ${e.key}@${e.server} ${e.reason}`),
      acquired: (e) => log.push(`acquired ${e.key}@${e.server} ${e.token} ${e.leaseTtl} ${e.fence}`),
      renewed: (e) => log.push(`renewed ${e.key} ${e.leaseTtl}`),
      released: (e) => log.push(`released ${e.key}@${e.server}`),
      lost: (e) => log.push(`lost ${e.key} ${e.error instanceof LockLostError}`),
    },
  };
}

function serve(peer: PeerEnd): void {
  let n = 0;
  peer.onRequest = ([cmd]) => {
    if (cmd === "l" || cmd === "w") peer.send(`ok ${token(++n)} 10 5\n`);
    else if (cmd === "e") peer.send("queued\n");
    else if (cmd === "n") peer.send("ok 10 5\n");
    else peer.send("ok\n");
  };
}

describe("hooks", () => {
  it("acquired, renewed and released, with the server and the holding", async () => {
    const { log, hooks } = recorder();
    const lock = new DistributedLock({ key: "k", servers: [["h", 1]], hooks });
    const p = lock.acquire();
    serve(await runtime().peer());
    expect(await p).toBe(true);
    await vi.advanceTimersByTimeAsync(5000);
    await lock.release();
    expect(log).toEqual([`acquired k@h:1 ${token(1)} 10 5`, "renewed k 10", "released k@h:1"]);
  });

  it("waiting: queued on the server, and for a turn behind this instance's callers", async () => {
    const { log, hooks } = recorder();
    const lock = new DistributedLock({ key: "k", servers: [["h", 1]], hooks });
    const e = lock.enqueue();
    const peer = await runtime().peer();
    serve(peer);
    expect(await e).toBe("queued");
    expect(await lock.wait(5)).toBe(true);
    await lock.release();
    const a = lock.withLock(() => "a");
    const b = lock.withLock(() => "b");
    expect(await Promise.all([a, b])).toEqual(["a", "b"]);
    expect(log.filter((l) => l.startsWith("waiting"))).toEqual(["waiting k@h:1 queued", "waiting k@h:1 turn"]);
    expect(log.filter((l) => l.startsWith("acquired")).length).toBe(3);
    expect(log.filter((l) => l.startsWith("released")).length).toBe(3);
  });

  it("lost, beside onLost; close() while held is a release", async () => {
    const { log, hooks } = recorder();
    const onLost = vi.fn();
    const lock = new DistributedLock({ key: "k", servers: [["h", 1]], hooks, onLost });
    const p = lock.acquire();
    const peer = await runtime().peer();
    serve(peer);
    expect(await p).toBe(true);
    peer.hangUp();
    await vi.advanceTimersByTimeAsync(0);
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(log).toEqual([`acquired k@h:1 ${token(1)} 10 5`, "lost k true"]);
    await expect(lock.release()).rejects.toBeInstanceOf(LockLostError);
    const again = lock.acquire();
    serve(await runtime().peer());
    expect(await again).toBe(true);
    lock.close();
    expect(log.at(-1)).toBe("released k@h:1");
  });

  it("a hook that throws is logged and changes nothing", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const lock = new DistributedLock({
        key: "k",
        hooks: {
          acquired: () => {
            throw new Error("metrics down");
          },
        },
      });
      const p = lock.acquire();
      serve(await runtime().peer());
      expect(await p).toBe(true);
      expect(lock.state).toBe("held");
      expect(logged).toHaveBeenCalledWith("dflockd-client: the acquired hook failed:", expect.any(Error));
      await lock.release();
    } finally {
      logged.mockRestore();
    }
  });

  it("an async hook that rejects is logged, never an unhandled rejection", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const lock = new DistributedLock({
        key: "k",
        hooks: { acquired: async () => Promise.reject(new Error("down")) },
      });
      const p = lock.acquire();
      serve(await runtime().peer());
      expect(await p).toBe(true);
      await vi.waitFor(() =>
        expect(logged).toHaveBeenCalledWith("dflockd-client: the acquired hook failed:", expect.any(Error)),
      );
      await lock.release();
    } finally {
      logged.mockRestore();
    }
  });

  it("a renewed hook may release the lock", async () => {
    let lock!: DistributedLock;
    let released: Promise<void> | undefined;
    lock = new DistributedLock({
      key: "k",
      hooks: {
        renewed: () => {
          released = lock.release();
        },
      },
    });
    const p = lock.acquire();
    const peer = await runtime().peer();
    serve(peer);
    expect(await p).toBe(true);
    await vi.advanceTimersByTimeAsync(5000);
    expect(released).toBeDefined();
    await released;
    expect(lock.state).toBe("released");
    expect(peer.requests.map((r) => r[0])).toEqual(["l", "n", "r"]);
  });

  it("hooks may be the methods of a class instance", async () => {
    class Metrics {
      seen: string[] = [];
      acquired(e: { key: string }): void {
        this.seen.push(e.key);
      }
    }
    const metrics = new Metrics();
    const lock = new DistributedLock({ key: "k", hooks: metrics });
    const p = lock.acquire();
    serve(await runtime().peer());
    expect(await p).toBe(true);
    expect(metrics.seen).toEqual(["k"]);
    await lock.release();
  });

  it("release() that finds the lock gone is told as lost; one that breaks the connection as released", async () => {
    const { log, hooks } = recorder();
    const lock = new DistributedLock({ key: "k", servers: [["h", 1]], hooks, requestTimeoutMs: 1000 });
    const p = lock.acquire();
    const peer = await runtime().peer();
    peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(1)} 10\n` : "error\n");
    expect(await p).toBe(true);
    await expect(lock.release()).rejects.toBeInstanceOf(LockLostError);
    expect(log.at(-1)).toBe("lost k true");
    // The refusal left the connection clean: the next acquire reuses it. This time the connection breaks.
    peer.onRequest = ([cmd]) => {
      if (cmd === "l") peer.send(`ok ${token(2)} 10\n`);
      else peer.hangUp();
    };
    expect(await lock.acquire()).toBe(true);
    const r = lock.release().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(0);
    expect(await r).toMatchObject({ code: "CONNECTION" });
    expect(log.at(-1)).toBe("released k@h:1");
  });

  it("bad hooks are refused up front", () => {
    expect(() => new DistributedLock({ key: "k", hooks: { acquried: () => {} } as never })).toThrow(
      /hooks: unknown option "acquried" \(did you mean "acquired"\?\)/,
    );
    expect(() => new DistributedLock({ key: "k", hooks: { lost: "log" } as never })).toThrow(InvalidArgumentError);
    expect(() => new DistributedLock({ key: "k", hooks: 3 as never })).toThrow(/got the number 3/);
  });
});
