/**
 * The decisions of `lock`/`sem` around the command, with a stub lock and a
 * fake host: the orders between a loss, the command's start and end, signals
 * and the release that a real server cannot be made to produce on cue.
 */
import { describe, expect, it, vi } from "vitest";
import { heldLine } from "../../src/cli/hold.ts";
import type { ChildExit, ChildProcessLike, CliHost, ForwardedSignal } from "../../src/cli/host.ts";
import { childEnv, type RunRequest, runUnderLock } from "../../src/cli/run.ts";
import { waitPlan } from "../../src/cli/take.ts";
import type { DflockdClient } from "../../src/client.ts";
import { AcquireTimeoutError, ConnectionError, LockLostError } from "../../src/errors.ts";
import type { HeldLock } from "../../src/held.ts";
import { WIRE_WAIT, type WireWait } from "../../src/wire-wait.ts";

const REQ: RunRequest = {
  kind: "lock",
  keys: ["k"],
  limit: 1,
  command: ["cmd"],
  timeoutMs: 5000,
  wait: false,
  graceS: 1,
  quiet: false,
  busyCode: 75,
};

/** A held lock whose signal and release the test controls. */
function stubHeld(release: () => Promise<void> = async () => {}, fence: string | undefined = "42") {
  const ctl = new AbortController();
  const held = {
    key: "k",
    server: "h:1",
    token: "the-token",
    fence,
    leaseTtl: 33,
    signal: ctl.signal,
    release: vi.fn(release),
  } as unknown as HeldLock;
  return { held, ctl };
}

function stubClient(hold: (options: { signal: AbortSignal }) => Promise<HeldLock>): DflockdClient {
  // As the library does, tell the CLI's internal option that the acquire request went out.
  const make = (opts?: object) => ({
    server: "h:1",
    hold: (options: { signal: AbortSignal }) => {
      (opts as { [WIRE_WAIT]?: WireWait } | undefined)?.[WIRE_WAIT]?.onSent?.();
      return hold(options);
    },
  });
  return {
    lock: (_k: string, opts?: object) => make(opts),
    semaphore: (_k: string, _l: number, opts?: object) => make(opts),
    servers: [["h", 1]],
  } as unknown as DflockdClient;
}

function fakeHost(stdinIsTerminal = false) {
  const handlers = new Map<ForwardedSignal, () => void>();
  const said: string[] = [];
  const kills: string[] = [];
  let end: (e: ChildExit) => void = () => {};
  const child: ChildProcessLike = {
    exited: new Promise<ChildExit>((resolve) => {
      end = resolve;
    }),
    kill: (s) => void kills.push(s),
  };
  const spawn = vi.fn(() => child);
  const out = { isTerminal: false, columns: () => undefined, write: async (t: string) => void said.push(t) };
  const host = {
    describe: "fake",
    args: [],
    env: () => undefined,
    envDenied: () => false,
    stdinIsTerminal,
    readTextFile: async () => "",
    stdout: out,
    stderr: out,
    spawn,
    onSignal: (s: ForwardedSignal, h: () => void) => {
      handlers.set(s, h);
      return () => handlers.delete(s);
    },
    signalNumber: (s: string) => ({ SIGINT: 2, SIGTERM: 15 })[s],
    listen: () => Promise.reject(new Error("lock and sem do not listen")),
    exit: () => {
      throw new Error("exit");
    },
  } as CliHost;
  return { host, handlers, said, kills, spawn, end: (e: ChildExit) => end(e) };
}

describe("runUnderLock", () => {
  it("does not start the command when the lock was lost before its start (76)", async () => {
    const { held, ctl } = stubHeld();
    ctl.abort(new LockLostError("k", "the lease ran out"));
    const f = fakeHost();
    expect(
      await runUnderLock(
        REQ,
        {},
        stubClient(async () => held),
        f.host,
      ),
    ).toBe(76);
    expect(f.spawn).not.toHaveBeenCalled();
    expect(f.said.join("")).toContain("was lost before the command started");
  });

  it("a loss during the grant is 76, and the command does not run", async () => {
    const f = fakeHost();
    const client = stubClient(async () => {
      throw new LockLostError("k", "the connection closed");
    });
    expect(await runUnderLock(REQ, {}, client, f.host)).toBe(76);
    expect(f.spawn).not.toHaveBeenCalled();
  });

  it("a loss while the command runs: SIGTERM, SIGKILL after the grace, 76, no release", async () => {
    vi.useFakeTimers();
    try {
      const { held, ctl } = stubHeld();
      const f = fakeHost();
      const result = runUnderLock(
        REQ,
        {},
        stubClient(async () => held),
        f.host,
      );
      await vi.advanceTimersByTimeAsync(0);
      expect(f.spawn).toHaveBeenCalledOnce();
      ctl.abort(new LockLostError("k", "no renewal confirmed"));
      expect(f.kills).toEqual(["SIGTERM"]);
      await vi.advanceTimersByTimeAsync(999);
      expect(f.kills).toEqual(["SIGTERM"]);
      await vi.advanceTimersByTimeAsync(1);
      expect(f.kills).toEqual(["SIGTERM", "SIGKILL"]);
      f.end({ code: null, signal: "SIGKILL" });
      expect(await result).toBe(76);
      expect(held.release).not.toHaveBeenCalled();
    } finally {
      vi.useRealTimers();
    }
  });

  it("releases only after the command ended; a failed release keeps the command's status", async () => {
    const { held } = stubHeld(async () => {
      throw new ConnectionError("h:1: connection reset");
    });
    const f = fakeHost();
    const result = runUnderLock(
      REQ,
      {},
      stubClient(async () => held),
      f.host,
    );
    await vi.waitFor(() => expect(f.spawn).toHaveBeenCalledOnce());
    f.handlers.get("SIGTERM")?.();
    expect(f.kills).toEqual(["SIGTERM"]);
    expect(held.release).not.toHaveBeenCalled();
    f.end({ code: 3, signal: null });
    expect(await result).toBe(3);
    expect(held.release).toHaveBeenCalledOnce();
    expect(f.said.join("")).toContain("the release failed (h:1: connection reset)");
  });

  it("with a terminal on stdin, SIGINT and SIGQUIT are not passed on (the terminal sent them); SIGTERM is", async () => {
    const { held } = stubHeld();
    const f = fakeHost(true);
    const result = runUnderLock(
      REQ,
      {},
      stubClient(async () => held),
      f.host,
    );
    await vi.waitFor(() => expect(f.spawn).toHaveBeenCalledOnce());
    f.handlers.get("SIGINT")?.();
    f.handlers.get("SIGQUIT")?.();
    expect(f.kills).toEqual([]);
    f.handlers.get("SIGTERM")?.();
    expect(f.kills).toEqual(["SIGTERM"]);
    f.end({ code: null, signal: "SIGTERM" });
    expect(await result).toBe(143);
    expect(f.handlers.size).toBe(0); // every signal handler removed
  });

  it("a signal while waiting stops the wait: 128+N, the command never runs", async () => {
    const f = fakeHost();
    const client = stubClient(
      ({ signal }) =>
        new Promise<HeldLock>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    );
    const result = runUnderLock(REQ, {}, client, f.host);
    await vi.waitFor(() => expect(f.handlers.size).toBe(4));
    f.handlers.get("SIGINT")?.();
    expect(await result).toBe(130);
    expect(f.spawn).not.toHaveBeenCalled();
  });
});

describe("what the command learns, and how long to wait", () => {
  it("the child gets key, server, fence and lease, and never the token", async () => {
    const { held } = stubHeld();
    const f = fakeHost();
    const result = runUnderLock(
      REQ,
      {},
      stubClient(async () => held),
      f.host,
    );
    await vi.waitFor(() => expect(f.spawn).toHaveBeenCalledOnce());
    const env = f.spawn.mock.calls[0]?.[2 as never] as unknown as Record<string, string | undefined>;
    expect(env).toEqual({ DFLOCKD_KEY: "k", DFLOCKD_SERVER: "h:1", DFLOCKD_FENCE: "42", DFLOCKD_LEASE: "33" });
    expect(JSON.stringify(env)).not.toContain("the-token");
    f.end({ code: 0, signal: null });
    expect(await result).toBe(0);
  });

  it("DFLOCKD_SERVER is the server that granted it (a cluster leader it was sent on to), not the sharding's pick", async () => {
    const { held } = stubHeld();
    Object.assign(held, { server: "leader:2" });
    const f = fakeHost();
    const result = runUnderLock(
      REQ,
      {},
      stubClient(async () => held),
      f.host,
    );
    await vi.waitFor(() => expect(f.spawn).toHaveBeenCalledOnce());
    const env = f.spawn.mock.calls[0]?.[2 as never] as unknown as Record<string, string | undefined>;
    expect(env.DFLOCKD_SERVER).toBe("leader:2");
    f.end({ code: 0, signal: null });
    expect(await result).toBe(0);
  });

  it("without a fence, DFLOCKD_FENCE is removed, so that an inherited one is not taken for ours", () => {
    const env = childEnv([{ key: "k", server: "[::1]:6388", fence: undefined, leaseTtl: 5 }]);
    expect(Object.hasOwn(env, "DFLOCKD_FENCE")).toBe(true);
    expect(env.DFLOCKD_FENCE).toBeUndefined();
    expect(env.DFLOCKD_SERVER).toBe("[::1]:6388");
  });

  it("asks the server for whole seconds up to an hour; a deadline of its own for the rest", () => {
    expect(waitPlan({ timeoutMs: undefined, wait: false })).toEqual({ timeoutS: 10 });
    expect(waitPlan({ timeoutMs: 0, wait: false })).toEqual({ timeoutS: 0 });
    expect(waitPlan({ timeoutMs: 90_000, wait: false })).toEqual({ timeoutS: 90 });
    expect(waitPlan({ timeoutMs: 3_600_000, wait: false })).toEqual({ timeoutS: 3600 });
    expect(waitPlan({ timeoutMs: 500, wait: false })).toEqual({ timeoutS: 1, deadlineMs: 500 });
    // Over the library's hour: Infinity to the library, but the server is asked for the whole seconds (rounded
    // up), so that its own timer ends a wait whose waiter went away; a deadline of our own only where needed.
    expect(waitPlan({ timeoutMs: 7_200_000, wait: false })).toEqual({ timeoutS: Infinity, infinityS: 7200 });
    expect(waitPlan({ timeoutMs: 3_600_500, wait: false })).toEqual({
      timeoutS: Infinity,
      infinityS: 3601,
      deadlineMs: 3_600_500,
    });
    expect(waitPlan({ timeoutMs: 7_200_000, wait: false, keys: ["a", "b"] })).toEqual({
      timeoutS: Infinity,
      infinityS: 7200,
      deadlineMs: 7_200_000,
    });
    expect(waitPlan({ timeoutMs: undefined, wait: true })).toEqual({ timeoutS: Infinity });
  });

  it("busy: the --conflict-exit-code status, after the deadline of a sub-second --timeout", async () => {
    const f = fakeHost();
    const asked: unknown[] = [];
    const client = stubClient((options) => {
      asked.push((options as { timeoutS?: number }).timeoutS);
      return new Promise<HeldLock>((_, reject) =>
        options.signal.addEventListener("abort", () => reject(options.signal.reason)),
      );
    });
    const t0 = performance.now();
    expect(await runUnderLock({ ...REQ, timeoutMs: 200, busyCode: 9 }, {}, client, f.host)).toBe(9);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
    expect(asked).toEqual([1]);
    expect(f.said.join("")).toContain('busy: lock "k" on h:1 was not free within 200ms');
  });

  it("several keys: each variable a list in the order taken; a missing fence is - (unset when none has one)", () => {
    const env = childEnv([
      { key: "a", server: "h:1", fence: "7", leaseTtl: 30 },
      { key: "b", server: "[::1]:2", fence: undefined, leaseTtl: 20 },
    ]);
    expect(env).toEqual({
      DFLOCKD_KEY: "a b",
      DFLOCKD_SERVER: "h:1 [::1]:2",
      DFLOCKD_FENCE: "7 -",
      DFLOCKD_LEASE: "30 20",
    });
    const none = childEnv([
      { key: "a", server: "h:1", fence: undefined, leaseTtl: 30 },
      { key: "b", server: "h:1", fence: undefined, leaseTtl: 30 },
    ]);
    expect(Object.hasOwn(none, "DFLOCKD_FENCE")).toBe(true);
    expect(none.DFLOCKD_FENCE).toBeUndefined();
  });

  it("several keys: one holdAll() of them all (same --limit for sem); a loss while the command runs releases the rest after it ended", async () => {
    const ctl = new AbortController();
    const release = vi.fn(async () => {
      throw new LockLostError("b", "no renewal confirmed");
    });
    const locks = [
      { key: "b", server: "h:1", fence: "1", leaseTtl: 33 },
      { key: "a", server: "h:1", fence: "2", leaseTtl: 33 },
    ];
    const holdAll = vi.fn(async () => ({ locks, signal: ctl.signal, release }));
    const prim = { server: "h:1" };
    const client = {
      lock: () => prim,
      semaphore: () => prim,
      servers: [["h", 1]],
      holdAll,
    } as unknown as DflockdClient;
    const f = fakeHost();
    const result = runUnderLock({ ...REQ, kind: "sem", limit: 3, keys: ["a", "b"] }, {}, client, f.host);
    await vi.waitFor(() => expect(f.spawn).toHaveBeenCalledOnce());
    expect(holdAll.mock.calls[0]?.[0 as never]).toEqual([
      { key: "a", limit: 3 },
      { key: "b", limit: 3 },
    ]);
    const env = f.spawn.mock.calls[0]?.[2 as never] as unknown as Record<string, string | undefined>;
    expect(env).toMatchObject({ DFLOCKD_KEY: "b a", DFLOCKD_FENCE: "1 2", DFLOCKD_SERVER: "h:1 h:1" });
    ctl.abort(new LockLostError("b", "no renewal confirmed"));
    expect(f.kills).toEqual(["SIGTERM"]);
    expect(release).not.toHaveBeenCalled(); // "a" stays held while the command stops
    f.end({ code: null, signal: "SIGTERM" });
    expect(await result).toBe(76);
    expect(release).toHaveBeenCalledOnce();
    expect(f.said.join("")).toContain('semaphore "b" was lost');
  });

  it("several keys, busy: names the key not had, and says none is held", async () => {
    const f = fakeHost();
    const holdAll = vi.fn(async () => {
      throw new AcquireTimeoutError("b", 0);
    });
    const prim = { server: "h:1" };
    const client = {
      lock: () => prim,
      semaphore: () => prim,
      servers: [["h", 1]],
      holdAll,
    } as unknown as DflockdClient;
    expect(await runUnderLock({ ...REQ, keys: ["a", "b"], timeoutMs: 0 }, {}, client, f.host)).toBe(75);
    expect(f.said.join("")).toContain('busy: lock "b" on h:1 was not free within 0s (one of 2 keys; none is held)');
    expect(f.spawn).not.toHaveBeenCalled();
  });
});

describe("lock KEY without a command", () => {
  it("prints one line once held, holds until SIGTERM, releases and exits 0", async () => {
    const { held } = stubHeld();
    const f = fakeHost();
    const result = runUnderLock(
      { ...REQ, command: [] },
      {},
      stubClient(async () => held),
      f.host,
    );
    await vi.waitFor(() => expect(f.said).toContain("key=k server=h:1 fence=42 lease=33\n"));
    expect(held.release).not.toHaveBeenCalled();
    f.handlers.get("SIGTERM")?.();
    expect(await result).toBe(0);
    expect(held.release).toHaveBeenCalledOnce();
    expect(f.spawn).not.toHaveBeenCalled();
  });

  it("a loss meanwhile exits 76 with a message", async () => {
    const { held, ctl } = stubHeld();
    const f = fakeHost();
    const result = runUnderLock(
      { ...REQ, command: [] },
      {},
      stubClient(async () => held),
      f.host,
    );
    await vi.waitFor(() => expect(f.said.length).toBe(1));
    ctl.abort(new LockLostError("k", "the server went away"));
    expect(await result).toBe(76);
    expect(f.said.join("")).toMatch(/lock "k" was lost .*the server went away/);
  });

  it("the line has an empty fence= when the server sends none", () => {
    expect(heldLine({ key: "a=b", server: "[::1]:1", fence: undefined, leaseTtl: 7 })).toBe(
      "key=a=b server=[::1]:1 fence= lease=7\n",
    );
  });
});
