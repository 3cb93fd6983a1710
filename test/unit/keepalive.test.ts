/**
 * Idle pooled connections kept open past the server's read timeout with
 * `ping` (issue 22), driven through the scripted in-memory peer with fake
 * timers: where the server answers it (dflockd v1.14+), for `idleTimeoutS`;
 * where it does not (v1.10: `error`), one ping asks, and its idle
 * connections close as before, one at a time. A ping's wait keeps no process
 * alive, and a pinged connection is lent to no one until its answer.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import { ping } from "../../src/lowlevel.ts";
import { connect } from "../../src/open.ts";
import { serve, servePings, tick, usePoolTest } from "../support/pool.ts";
import type { PeerEnd, ScriptedRuntime } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
});

/** The commands `peer` received, with the (fake) time each came at. */
function timed(peer: PeerEnd, answer: (cmd: string) => string | undefined): Array<[string, number]> {
  const seen: Array<[string, number]> = [];
  peer.onRequest = ([cmd]) => {
    seen.push([cmd as string, performance.now()]);
    const reply = answer(cmd as string);
    if (reply !== undefined) peer.send(reply);
  };
  return seen;
}

let n = 0;
/** A free server's answers, `ping` answered with `pingReply`. */
const answers =
  (pingReply: string | undefined) =>
  (cmd: string): string | undefined =>
    cmd === "ping" ? pingReply : cmd === "l" ? `ok ${String(++n).padStart(32, "0")} 10\n` : "ok\n";

describe("on a server that answers ping", () => {
  it("an idle connection outlives the read timeout, pinged before it could pass, and is lent again", async () => {
    let seen: Array<[string, number]> = [];
    rt.onPeer = (peer) => {
      seen = timed(peer, answers("ok\n"));
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3 });
    const lock = client.lock("k");
    expect(await lock.acquire()).toBe(true);
    await lock.release();
    await tick(10_000);
    expect(rt.peers).toHaveLength(1);
    expect(rt.peers[0]?.closedByClient).toBe(false);
    // Every request follows the one before by less than the 3 s read timeout: the server never cuts it.
    expect(seen.filter(([c]) => c === "ping").length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < seen.length; i++)
      expect((seen[i] as [string, number])[1] - (seen[i - 1] as [string, number])[1]).toBeLessThan(3000);
    expect(await lock.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(1);
    expect(seen.at(-1)?.[0]).toBe("l");
    client.close();
  });

  it("for idleTimeoutS only: then it closes before the read timeout would cut it", async () => {
    let seen: Array<[string, number]> = [];
    rt.onPeer = (peer) => {
      seen = timed(peer, answers("ok\n"));
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3, idleTimeoutS: 5 });
    const lock = client.lock("k");
    await lock.acquire();
    await lock.release();
    const idleAt = performance.now();
    await tick(5_000);
    expect(rt.peers[0]?.closedByClient).toBe(false);
    await tick(2_000);
    expect(rt.peers[0]?.closedByClient).toBe(true);
    // Pinged at 2 s and 4 s after the release; at 6 s it had been idle 5 s, and closed instead.
    expect(seen.filter(([c]) => c === "ping").map(([, t]) => t - idleAt)).toEqual([2000, 4000]);
    client.close();
  });

  it("idleTimeoutS: 0 never pings: the connection closes as the read timeout nears", async () => {
    rt.onPeer = (peer) => servePings(peer, true);
    const client = new DflockdClient({ serverReadTimeoutS: 3, idleTimeoutS: 0 });
    const lock = client.lock("k");
    await lock.acquire();
    await lock.release();
    await tick(2_100);
    expect(rt.peers[0]?.closedByClient).toBe(true);
    expect(rt.peers[0]?.requests.map((r) => r[0])).toEqual(["l", "r"]);
    client.close();
  });

  it("only maxIdlePerServer of them are kept: the surplus closes, the kept ones are pinged", async () => {
    rt.onPeer = (peer) => servePings(peer, true);
    const client = new DflockdClient({ serverReadTimeoutS: 3, maxIdlePerServer: 2 });
    const locks = ["a", "b", "c", "d"].map((k) => client.lock(k));
    await Promise.all(locks.map((l) => l.acquire()));
    await Promise.all(locks.map((l) => l.release()));
    await tick(8_000);
    const open = rt.peers.filter((p) => !p.closedByClient);
    expect(open).toHaveLength(2);
    for (const p of open) expect(p.requests.filter((r) => r[0] === "ping").length).toBeGreaterThanOrEqual(3);
    client.close();
  });

  it("a ping's wait keeps no process alive, and the pinged connection is lent to no one until its answer", async () => {
    let answerPing: (() => void) | undefined;
    rt.onPeer = (peer) => {
      timed(peer, (cmd) => {
        if (cmd !== "ping") return answers(undefined)(cmd);
        answerPing = () => peer.send("ok\n");
        return undefined;
      });
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3 });
    const a = client.lock("a");
    await a.acquire();
    await a.release();
    await tick(2_000);
    const first = rt.peers[0] as PeerEnd;
    expect(first.requests.at(-1)?.[0]).toBe("ping");
    expect(first.refd).toBe(false);
    // Meanwhile, an acquire connects afresh rather than queue behind the ping.
    const b = client.lock("b");
    expect(await b.acquire()).toBe(true);
    expect(rt.peers).toHaveLength(2);
    expect(first.requests.map((r) => r[0])).toEqual(["l", "r", "ping"]);
    answerPing?.();
    await tick(0);
    await b.release();
    // Both idle now, and lent again: the pinged one came back.
    const c = client.lock("c");
    const d = client.lock("d");
    await Promise.all([c.acquire(), d.acquire()]);
    expect(rt.peers).toHaveLength(2);
    client.close();
  });

  it("closeIdleConnections()/client.close() close a connection whose ping is unanswered, for good", async () => {
    rt.onPeer = (peer) => {
      timed(peer, (cmd) => (cmd === "ping" ? undefined : answers(undefined)(cmd)));
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3 });
    const a = client.lock("a");
    await a.acquire();
    await a.release();
    await tick(2_000);
    expect(rt.peers[0]?.requests.at(-1)?.[0]).toBe("ping");
    client.close();
    expect(rt.peers[0]?.closedByClient).toBe(true);
  });

  it("a ping answered error_draining closes that connection, and does not count as a server without ping", async () => {
    let draining = true;
    rt.onPeer = (peer) => {
      timed(peer, (cmd) => (cmd === "ping" ? (draining ? "error_draining\n" : "ok\n") : answers(undefined)(cmd)));
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3 });
    const a = client.lock("a");
    await a.acquire();
    await a.release();
    await tick(2_100);
    expect(rt.peers[0]?.closedByClient).toBe(true);
    draining = false;
    await a.acquire();
    await a.release();
    await tick(5_000);
    expect(rt.peers[1]?.closedByClient).toBe(false);
    expect(rt.peers[1]?.requests.filter((r) => r[0] === "ping").length).toBeGreaterThanOrEqual(2);
    client.close();
  });
});

describe("on a server without ping (dflockd before v1.14)", () => {
  it("one ping asks; then its idle connections close as the read timeout nears, one at a time, and are never pinged again", async () => {
    rt.onPeer = serve;
    const client = new DflockdClient({ serverReadTimeoutS: 3, maxIdleClosesPerSecond: 10 });
    const locks = ["a", "b", "c"].map((k) => client.lock(k));
    await Promise.all(locks.map((l) => l.acquire()));
    await Promise.all(locks.map((l) => l.release()));
    const closes: number[] = [];
    const start = performance.now();
    for (let t = 0; t < 3000; t += 10) {
      await tick(10);
      const closed = rt.peers.filter((p) => p.closedByClient).length;
      while (closes.length < closed) closes.push(performance.now() - start);
    }
    expect(closes).toHaveLength(3);
    for (let i = 1; i < closes.length; i++)
      expect((closes[i] as number) - (closes[i - 1] as number)).toBeGreaterThanOrEqual(100);
    const pings = (): number => rt.peers.flatMap((p) => p.requests).filter((r) => r[0] === "ping").length;
    expect(pings()).toBe(1);
    // The next idle round sends no ping at all.
    await Promise.all(locks.map((l) => l.acquire()));
    await Promise.all(locks.map((l) => l.release()));
    await tick(3_000);
    expect(rt.peers.filter((p) => !p.closedByClient)).toHaveLength(0);
    expect(pings()).toBe(1);
    client.close();
  });
});

describe("idleTimeoutS", () => {
  it.each([[-1], [1.5], ["60"], [3601], [Number.NaN]])("refuses %j before connecting", (value) => {
    expect(() => new DflockdClient({ idleTimeoutS: value as number })).toThrow(InvalidArgumentError);
    expect(() => new DflockdClient({ idleTimeoutS: value as number })).toThrow(/idleTimeoutS/);
    expect(rt.peers).toHaveLength(0);
  });

  it("takes Infinity: kept with ping for as long as the client lives", () => {
    expect(() => new DflockdClient({ idleTimeoutS: Number.POSITIVE_INFINITY }).close()).not.toThrow();
  });
});

describe("ping() on a connection of your own", () => {
  it("is true where the server answers ok, false where it answers error, and the connection stays usable", async () => {
    rt.onPeer = (peer) => servePings(peer, true);
    const newer = await connect();
    expect(await ping(newer)).toBe(true);
    newer.close();
    rt.onPeer = serve;
    const older = await connect();
    expect(await ping(older)).toBe(false);
    expect(older.closed).toBe(false);
    expect(await ping(older)).toBe(false);
    older.close();
    expect(rt.peers[1]?.requests).toEqual([
      ["ping", "_", "_"],
      ["ping", "_", "_"],
    ]);
  });

  it("rejects other refusals as a typed ServerError", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = () => peer.send("error_draining\n");
    };
    const conn = await connect();
    await expect(ping(conn)).rejects.toMatchObject({ name: "ServerError", status: "error_draining" });
    conn.close();
  });
});
