/**
 * Errors that say where, and a lock that shows what it is: host:port in
 * connection errors, a hint when the other end is not dflockd at all, and
 * what `console.log` / `inspect` show of a lock (never the secret).
 */
import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConnectionError, LockLostError, ProtocolError } from "../../src/errors.ts";
import { LimitMismatchError } from "../../src/mismatch.ts";
import { sharedPool } from "../../src/pool.ts";
import { stableHashShard } from "../../src/sharding.ts";
import { lostConnectionReason } from "../../src/wording.ts";
// Through the runtime entry point, which installs its runtime's inspect hook (the core has none).
import { DistributedLock } from "../support/client.ts";
import { type PeerEnd, type ScriptedRuntime, token, useScriptedRuntime } from "../support/scripted-peer.ts";

let rt: ScriptedRuntime;
beforeEach(() => {
  sharedPool.closeIdle();
  rt = useScriptedRuntime();
});
afterEach(() => {
  sharedPool.closeIdle();
  vi.useRealTimers();
});

describe("errors name the server", () => {
  it("a reply that is not dflockd's says so, and names host:port", async () => {
    const lock = new DistributedLock({ key: "k", servers: [["web.internal", 8080]] });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send("HTTP/1.1 400 Bad Request\r\n");
    const err = (await p) as ProtocolError;
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe("PROTOCOL");
    expect(err.message).toMatch(/^web\.internal:8080: malformed reply to "l": "HTTP\/1\.1 400 Bad Request"/);
    expect(err.message).toMatch(
      /that is not a dflockd reply: is web\.internal:8080 a dflockd server\? Check the host and port/,
    );
    expect(err.reply).toBe("HTTP/1.1 400 Bad Request");
  });

  it("a malformed reply in dflockd's own words gets no such hint", async () => {
    const lock = new DistributedLock({ key: "k", servers: [["h", 1]] });
    const p = lock.acquire().catch((e: unknown) => e);
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send("ok not-a-lease\n");
    const err = (await p) as ProtocolError;
    expect(err.message).toMatch(/^h:1: malformed reply/);
    expect(err.message).not.toMatch(/not a dflockd reply/);
  });

  it("a port where nothing answers: the timeout names host:port and asks whether it is dflockd", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const lock = new DistributedLock({ key: "k", servers: [["::1", 7000]], acquireTimeoutS: 1 });
    const p = lock.acquire().catch((e: unknown) => e);
    await (await rt.peer()).nextRequest(1);
    await vi.advanceTimersByTimeAsync(6000);
    const err = (await p) as ConnectionError;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toMatch(/^\[::1\]:7000: no reply to "l" within 6000 ms/);
    expect(err.message).toMatch(/nothing at all came back on this connection: is it a dflockd server\?/);
  });
});

describe("what a lock shows of itself", () => {
  it("key, state and server; the lease and fence while held; never the secret", async () => {
    const lock = new DistributedLock({ key: "report", auth: "hunter2-secret", servers: [["h", 1]] });
    expect(JSON.stringify(lock)).toBe('{"key":"report","state":"released","server":"h:1"}');
    const before = inspect(lock);
    expect(before).toBe("DistributedLock { key: 'report', state: 'released', server: 'h:1' }");
    const p = lock.acquire();
    const peer = await rt.peer();
    expect((await peer.nextRequest(1))[0]).toBe("auth");
    peer.send("ok\n");
    expect((await peer.nextRequest(2))[0]).toBe("l");
    peer.send(`ok ${token(1)} 20 7\n`);
    expect(await p).toBe(true);
    const held = inspect(lock);
    expect(held).toMatch(/state: 'held'/);
    expect(held).toMatch(/leaseTtl: 20/);
    expect(held).toMatch(/fence: '7'/);
    const shownBy: string[] = [before, held, inspect(lock, { depth: 5, showHidden: true }), String(lock)];
    const deno = (globalThis as unknown as { Deno?: { inspect(v: unknown): string } }).Deno;
    if (deno !== undefined) {
      // Deno's own inspect (console.log on Deno) goes through Deno.customInspect.
      const native = deno.inspect(lock);
      expect(native.replace(/\s+/g, " ")).toMatch(
        /^DistributedLock \{ key: "report", state: "held", server: "h:1", leaseTtl: 20, fence: "7",? \}$/,
      );
      shownBy.push(native);
    }
    for (const shown of shownBy) {
      expect(shown).not.toContain("hunter2");
    }
    lock.close();
  });

  it("lock.server is where the key goes, as every client computes it", () => {
    const servers: Array<[string, number]> = [
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ];
    for (const key of ["my-job", "ключ", "x"]) {
      const lock = new DistributedLock({ key, servers });
      const [host, port] = servers[stableHashShard(key, 3)] as [string, number];
      expect(lock.server).toBe(`${host}:${port}`);
    }
  });
});

describe("a loss to the server's read timeout names serverReadTimeoutS", () => {
  /** Hold "k" (lease 60 s, serverReadTimeoutS 23), let `idleMs` pass, then end the connection as `end` says. */
  async function lose(idleMs: number, end: (peer: PeerEnd) => void): Promise<LockLostError> {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    let lost: LockLostError | undefined;
    const lock = new DistributedLock({ key: "k", servers: [["h", 1]], leaseTtlS: 60, onLost: (e) => (lost = e) });
    const p = lock.acquire();
    const peer = await rt.peer();
    await peer.nextRequest(1);
    peer.send(`ok ${token(1)} 60\n`);
    expect(await p).toBe(true);
    await vi.advanceTimersByTimeAsync(idleMs);
    end(peer);
    await vi.advanceTimersByTimeAsync(1);
    lock.close();
    expect(lost).toBeInstanceOf(LockLostError);
    return lost as LockLostError;
  }

  it("dflockd's parting error after an idle gap shorter than assumed: the option and the value to set", async () => {
    const lost = await lose(3_400, (peer) => {
      peer.send("error\n");
      peer.hangUp();
    });
    expect(lost.message).toBe(
      `lost "k": the server closed the connection after it had been idle 3.4 s: its read timeout looks shorter than the 23 s the client assumed (serverReadTimeoutS). Set serverReadTimeoutS to 3, or to the server's --read-timeout, so that renewals come in time`,
    );
    expect(lost.cause).toBeInstanceOf(ConnectionError);
  });

  it("a close without the parting error says nothing of a read timeout", async () => {
    const lost = await lose(3_400, (peer) => peer.hangUp());
    expect(lost.message).toBe('lost "k": the connection to the server was lost');
  });

  it("an error sooner than any read timeout (under a second idle) says nothing of one either", async () => {
    const lost = await lose(500, (peer) => {
      peer.send("error\n");
      peer.hangUp();
    });
    expect(lost.message).not.toMatch(/serverReadTimeoutS/);
  });

  it("only an idle gap from 0.9 s to half a second short of the assumed read timeout counts", () => {
    expect(lostConnectionReason(undefined, 23_000)).toBe("the connection to the server was lost");
    expect(lostConnectionReason(899, 23_000)).toBe("the connection to the server was lost");
    expect(lostConnectionReason(23_000, 23_000)).toBe("the connection to the server was lost");
    // Both read timeouts are whole seconds: a gap this close to the assumed one is that one (a late renewal).
    expect(lostConnectionReason(22_600, 23_000)).toBe("the connection to the server was lost");
    expect(lostConnectionReason(22_400, 23_000)).toMatch(/Set serverReadTimeoutS to 22,/);
    // Just under a second is dflockd's least read timeout, 1 s, seen from the client's send: never "idle 0.9 s ... to 1".
    expect(lostConnectionReason(950, 23_000)).toMatch(/idle 1\.0 s: .* Set serverReadTimeoutS to 1,/);
    // The idle time shown is rounded down as the value to set is: never "idle 10.0 s ... to 9".
    expect(lostConnectionReason(9_999, 23_000)).toMatch(/idle 9\.9 s: .* Set serverReadTimeoutS to 9,/);
    expect(lostConnectionReason(1_999.96, 23_000)).toMatch(/idle 1\.9 s: .* Set serverReadTimeoutS to 1,/);
  });
});

describe("LimitMismatchError", () => {
  it("a server limit equal to the one asked for (the key re-created meanwhile) counts as unknown", () => {
    const err = new LimitMismatchError("k", 3, "h:1", 3);
    expect(err.serverLimit).toBeUndefined();
    expect(err.message).not.toMatch(/server has it as a semaphore with limit 3/);
    expect(err.message).toMatch(/asked for with limit 3, but the server has it with another limit/);
    expect(new LimitMismatchError("k", 3, "h:1", 2).serverLimit).toBe(2);
  });
});
