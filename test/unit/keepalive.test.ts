/**
 * Idle pooled connections kept open past the server's read timeout with
 * `ping` (issue 22), driven through the scripted in-memory peer with fake
 * timers: where the server answers it (dflockd v1.14+), for `idleTimeoutS`;
 * where it does not (v1.10: `error`), one ping asks, and its idle
 * connections close as before, one at a time. A ping's wait keeps no process
 * alive, and a pinged connection is lent to no one until its answer.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import { ping } from "../../src/lowlevel.ts";
import { connect } from "../../src/open.ts";
import { ConnectionPool, sharedPool } from "../../src/pool.ts";
import type { DistributedLock } from "../../src/primitive.ts";
import { PING_REQUEST, parseOkReply } from "../../src/protocol.ts";
import { serve, servePings, tick, usePoolTest } from "../support/pool.ts";
import type { PeerEnd, ScriptedRuntime } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
beforeEach(() => {
  rt = runtime();
  // Acquisitions started together here each open a connection of their own, to leave that many idle: none waits
  // for a connection opened for sharing (which they would from the second on, with the pool tests' shareAfter 0).
  ConnectionPool.defaultShareAfter = 1000;
  sharedPool.shareAfter = 1000;
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
  /** Step `ms` of fake time in 1 ms steps: the most connections closed within one step. */
  async function burstOver(peers: () => PeerEnd[], ms: number): Promise<number> {
    let most = 0;
    for (let t = 0; t < ms; t++) {
      const before = peers().filter((p) => p.closedByClient).length;
      await tick(1);
      most = Math.max(most, peers().filter((p) => p.closedByClient).length - before);
    }
    return most;
  }

  it("each idle connection is pinged once, answered error, and they close one at a time; never pinged again", async () => {
    rt.onPeer = serve;
    const client = new DflockdClient({ serverReadTimeoutS: 3, maxIdleClosesPerSecond: 10 });
    const locks = ["a", "b", "c"].map((k) => client.lock(k));
    await Promise.all(locks.map((l) => l.acquire()));
    await Promise.all(locks.map((l) => l.release()));
    expect(await burstOver(() => rt.peers, 5_000)).toBe(1);
    expect(rt.peers.filter((p) => !p.closedByClient)).toHaveLength(0);
    const pings = (): number => rt.peers.flatMap((p) => p.requests).filter((r) => r[0] === "ping").length;
    expect(pings()).toBe(3);
    // Learnt: the next idle round sends no ping at all, and closes as the read timeout nears.
    await Promise.all(locks.map((l) => l.acquire()));
    await Promise.all(locks.map((l) => l.release()));
    expect(await burstOver(() => rt.peers, 3_000)).toBe(1);
    expect(rt.peers.filter((p) => !p.closedByClient)).toHaveLength(0);
    expect(pings()).toBe(3);
    client.close();
  });

  it("a server slow to answer error: none closes at once, and none stays open past its read timeout", async () => {
    const last = new Map<PeerEnd, number>();
    const closedAt = new Map<PeerEnd, number>();
    rt.onPeer = (peer) => {
      timed(peer, (cmd) => {
        last.set(peer, performance.now());
        if (cmd !== "ping") return answers(undefined)(cmd);
        setTimeout(() => peer.send("error\n"), 1500);
        return undefined;
      });
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3, maxIdleClosesPerSecond: 10 });
    const locks = ["a", "b", "c", "d"].map((k) => client.lock(k));
    await Promise.all(locks.map((l) => l.acquire()));
    await Promise.all(locks.map((l) => l.release()));
    let most = 0;
    for (let t = 0; t < 8_000; t++) {
      const before = closedAt.size;
      await tick(1);
      for (const p of rt.peers) if (p.closedByClient && !closedAt.has(p)) closedAt.set(p, performance.now());
      most = Math.max(most, closedAt.size - before);
    }
    expect(most).toBe(1);
    for (const p of rt.peers) {
      // dflockd cuts a connection its read timeout after the last request it read.
      expect((closedAt.get(p) as number) - (last.get(p) as number)).toBeLessThan(3000);
    }
    client.close();
  });

  it("a server that answered ping, replaced by one that does not: its idle connections do not all close at once", async () => {
    let pings = true;
    rt.onPeer = (peer) => servePings(peer, pings);
    const client = new DflockdClient({ serverReadTimeoutS: 3 });
    const one = client.lock("x");
    await one.acquire();
    await one.release();
    await tick(2_100);
    expect(rt.peers[0]?.requests.at(-1)?.[0]).toBe("ping");
    pings = false;
    (rt.peers[0] as PeerEnd).hangUp();
    await tick(0);
    const locks = Array.from({ length: 8 }, (_, i) => client.lock(`k${i}`));
    await Promise.all(locks.map((l) => l.acquire()));
    await Promise.all(locks.map((l) => l.release()));
    const fresh = (): PeerEnd[] => rt.peers.slice(1);
    expect(await burstOver(fresh, 6_000)).toBe(1);
    expect(fresh().filter((p) => !p.closedByClient)).toHaveLength(0);
    client.close();
  });

  it("an error that comes with a close (a cut, not an unknown command) teaches nothing", async () => {
    let cut = true;
    rt.onPeer = (peer) => {
      timed(peer, (cmd) => {
        if (cmd !== "ping") return answers(undefined)(cmd);
        if (!cut) return "ok\n";
        // dflockd's read-timeout cut: `error`, then the close, two events on a real socket.
        peer.send("error\n");
        setTimeout(() => peer.hangUp(), 0);
        return undefined;
      });
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3 });
    const a = client.lock("a");
    await a.acquire();
    await a.release();
    await tick(2_100);
    expect(rt.peers[0]?.requests.at(-1)?.[0]).toBe("ping");
    cut = false;
    await a.acquire();
    await a.release();
    await tick(5_000);
    const second = rt.peers.at(-1) as PeerEnd;
    expect(second.closedByClient).toBe(false);
    expect(second.requests.filter((r) => r[0] === "ping").length).toBeGreaterThanOrEqual(2);
    client.close();
  });
});

describe("an error answer learnt only when settled", () => {
  const pings = (peers: PeerEnd[] = rt.peers): number =>
    peers.reduce((n, p) => n + p.requests.filter((r) => r[0] === "ping").length, 0);

  it("a refused connection closed as surplus still teaches it: the server is not asked again", async () => {
    // "o" goes to 127.0.0.1, which answers ping; "a", "b", "c" to 127.0.0.2, which answers error: the first
    // server's pings keep the reaper running while the second's list empties and is forgotten.
    rt.onPeer = (peer) => servePings(peer, peer.target.host !== "127.0.0.2");
    const servers: Array<[string, number]> = [
      ["127.0.0.1", 6388],
      ["127.0.0.2", 6388],
    ];
    const client = new DflockdClient({ serverReadTimeoutS: 3, maxIdlePerServer: 1, servers });
    const other = client.lock("o");
    await other.acquire();
    await other.release();
    const [a, b] = ["a", "b"].map((k) => client.lock(k)) as [DistributedLock, DistributedLock];
    await Promise.all([a.acquire(), b.acquire()]);
    const old = (): number => pings(rt.peers.filter((p) => p.target.host === "127.0.0.2"));
    expect(rt.peers.filter((p) => p.target.host === "127.0.0.2")).toHaveLength(2);
    await a.release();
    await tick(2_100); // a's connection answers error: kept one more span
    expect(old()).toBe(1);
    await b.release(); // a's is now beyond maxIdle, and closed as such
    await tick(10_000);
    const c = client.lock("c");
    await c.acquire();
    await c.release();
    await tick(2_100);
    expect(old()).toBe(1);
    client.close();
  });

  it("one refused connection found closed does not resume pings while another refusal is unsettled", async () => {
    let first = true;
    rt.onPeer = (peer) => {
      servePings(peer, false);
      const answer = peer.onRequest;
      peer.onRequest = (req) => {
        answer?.(req);
        if (req[0] === "ping" && first) {
          first = false;
          setTimeout(() => peer.hangUp(), 100);
        }
      };
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3 });
    const [a, b, c] = ["a", "b", "c"].map((k) => client.lock(k)) as [DistributedLock, DistributedLock, DistributedLock];
    await Promise.all([a.acquire(), b.acquire(), c.acquire()]);
    await Promise.all([a.release(), b.release()]);
    await tick(1_000);
    await c.release();
    await tick(2_500); // a and b answer error at 2 s; one is closed at 2.1 s; c's time comes at 3 s
    expect(pings()).toBe(2);
    client.close();
  });

  it("a cut's error taken by an acquire before the close comes is not learnt", async () => {
    let cut = true;
    let lend: (() => void) | undefined;
    rt.onPeer = (peer) => {
      servePings(peer, true);
      const answer = peer.onRequest;
      peer.onRequest = (req) => {
        if (req[0] !== "ping" || !cut) return answer?.(req);
        peer.send("error\n");
        setTimeout(() => lend?.(), 1); // an acquire between the error and the close
        setTimeout(() => peer.hangUp(), 5);
      };
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3 });
    const a = client.lock("a");
    await a.acquire();
    await a.release();
    const b = client.lock("b");
    let got: Promise<boolean> | undefined;
    lend = () => {
      got = b.acquire().catch(() => false);
    };
    await tick(2_100);
    expect(got).toBeDefined();
    await got;
    cut = false;
    lend = undefined;
    const c = client.lock("c");
    await c.acquire();
    await c.release();
    const before = pings();
    await tick(5_000);
    expect(pings() - before).toBeGreaterThanOrEqual(2);
    client.close();
  });
});

describe("pings and closes side by side", () => {
  it("closes stay a min gap apart even when the idle list empties in between", async () => {
    const closedAt = new Map<PeerEnd, number>();
    rt.onPeer = (peer) => servePings(peer, true);
    const client = new DflockdClient({
      serverReadTimeoutS: 3,
      idleTimeoutS: 0,
      maxIdlePerServer: 1,
      maxIdleClosesPerSecond: 0.5,
    });
    const [a, b, c] = ["a", "b", "c"].map((k) => client.lock(k)) as [DistributedLock, DistributedLock, DistributedLock];
    await Promise.all([a.acquire(), b.acquire(), c.acquire()]);
    await a.release();
    const watch = async (ms: number): Promise<void> => {
      for (let i = 0; i < ms; i += 10) {
        await tick(10);
        for (const p of rt.peers) if (p.closedByClient && !closedAt.has(p)) closedAt.set(p, performance.now());
      }
    };
    await watch(2_100); // a's time is up at 2 s: it closes, the only idle one
    expect(closedAt.size).toBe(1);
    await Promise.all([b.release(), c.release()]); // two idle, one beyond maxIdle
    await watch(3_000);
    const times = [...closedAt.values()].sort((x, y) => x - y);
    expect(times.length).toBeGreaterThanOrEqual(2);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(2000);
    client.close();
  });

  it("only maxIdlePerServer are pinged, however long the answers take: the surplus closes", async () => {
    rt.onPeer = (peer) => {
      timed(peer, (cmd) => {
        if (cmd !== "ping") return answers(undefined)(cmd);
        setTimeout(() => peer.send("ok\n"), 1500);
        return undefined;
      });
    };
    // 38 beyond maxIdle, closed one a second: a dozen are left when the two kept ones are pinged at 27 s, and
    // the reaper closes the next at 28 s, while those two still wait for their answers.
    const client = new DflockdClient({ serverReadTimeoutS: 30, maxIdlePerServer: 2, maxIdleClosesPerSecond: 1 });
    const locks = Array.from({ length: 40 }, (_, i) => client.lock(`k${i}`));
    await Promise.all(locks.map((l) => l.acquire()));
    await Promise.all(locks.map((l) => l.release()));
    await tick(28_200);
    expect(rt.peers.filter((p) => p.requests.some((r) => r[0] === "ping")).length).toBeLessThanOrEqual(2);
    client.close();
  });

  it("pings left unanswered (a stalled server) close one at a time, not all when they time out", async () => {
    rt.onPeer = (peer) => {
      timed(peer, (cmd) => (cmd === "ping" ? undefined : answers(undefined)(cmd)));
    };
    const client = new DflockdClient({ serverReadTimeoutS: 3, maxIdleClosesPerSecond: 10 });
    const locks = Array.from({ length: 8 }, (_, i) => client.lock(`k${i}`));
    await Promise.all(locks.map((l) => l.acquire()));
    await Promise.all(locks.map((l) => l.release()));
    let most = 0;
    for (let t = 0; t < 10_000; t++) {
      const before = rt.peers.filter((p) => p.closedByClient).length;
      await tick(1);
      most = Math.max(most, rt.peers.filter((p) => p.closedByClient).length - before);
    }
    expect(most).toBe(1);
    expect(rt.peers.filter((p) => !p.closedByClient)).toHaveLength(0);
    client.close();
  });

  it("after the event loop stalls past a connection's time, it is closed, not pinged", async () => {
    rt.onPeer = (peer) => servePings(peer, true);
    const client = new DflockdClient({ serverReadTimeoutS: 3 });
    const a = client.lock("a");
    await a.acquire();
    await a.release();
    const real = performance.now.bind(performance);
    // The reaper's timer fires 700 ms late: 2.7 s after the release, more than half the guard past its time.
    vi.spyOn(performance, "now").mockImplementation(() => real() + 700);
    await tick(2_000);
    vi.restoreAllMocks();
    expect(rt.peers[0]?.requests.map((r) => r[0])).toEqual(["l", "r"]);
    expect(rt.peers[0]?.closedByClient).toBe(true);
    client.close();
  });

  it("a connection to be pinged is not held back behind rate-limited closes", async () => {
    let seen: Array<Array<[string, number]>> = [];
    rt.onPeer = (peer) => {
      seen.push(timed(peer, answers("ok\n")));
    };
    seen = [];
    const client = new DflockdClient({ serverReadTimeoutS: 3, idleTimeoutS: 4, maxIdleClosesPerSecond: 1 });
    const old = ["a", "b", "c", "d", "e"].map((k) => client.lock(k));
    await Promise.all(old.map((l) => l.acquire()));
    await Promise.all(old.map((l) => l.release()));
    // At 4 s the five have been idle 4 s: they close, one a second, until 8 s.
    await tick(3_500);
    const fresh = client.lock("f");
    await fresh.acquire();
    const releasedAt = performance.now();
    await fresh.release();
    await tick(4_000);
    const f = rt.peers.findIndex((p) => p.requests.some((r) => r[1] === "f"));
    const pingsOfF = (seen[f] as Array<[string, number]>)
      .filter(([c, t]) => c === "ping" && t > releasedAt)
      .map(([, t]) => t - releasedAt);
    // Its ping is due 2 s after its release, and goes then, not when the closes ahead of it are done.
    expect(pingsOfF[0]).toBe(2000);
    expect(rt.peers[f]?.closedByClient).toBe(false);
    client.close();
  });
});

describe("a connection beyond maxIdle that becomes one of those kept", () => {
  const peerOf = (key: string): PeerEnd =>
    rt.peers.find((p) => p.requests.some((r) => r[0] === "l" && r[1] === key)) as PeerEnd;

  /**
   * a and b released at 0 (lendable until 2 s), c at 0.7 s; with maxIdlePerServer 1, a and b are beyond it, and a
   * closes at 1 s (the next close not before 3 s). At 1.5 s, `leave` takes c away; b is then kept, due at 2 s.
   */
  async function bKeptAt1500(leave: (c: PeerEnd, client: DflockdClient) => Promise<void>): Promise<PeerEnd> {
    rt.onPeer = (peer) => servePings(peer, true);
    const client = new DflockdClient({ serverReadTimeoutS: 3, maxIdlePerServer: 1, maxIdleClosesPerSecond: 0.5 });
    const [a, b, c] = ["a", "b", "c"].map((k) => client.lock(k)) as [DistributedLock, DistributedLock, DistributedLock];
    await Promise.all([a.acquire(), b.acquire(), c.acquire()]);
    await Promise.all([a.release(), b.release()]);
    await tick(700);
    await c.release();
    await tick(300);
    expect(peerOf("a").closedByClient).toBe(true);
    await tick(500);
    await leave(peerOf("c"), client);
    await tick(1_500);
    const b2 = peerOf("b");
    client.close();
    return b2;
  }

  it("when an acquire takes a kept one, it is pinged at its time, not closed", async () => {
    const b = await bKeptAt1500(async (_c, client) => {
      expect(await client.lock("d").acquire()).toBe(true);
      expect(rt.peers).toHaveLength(3);
    });
    expect(b.requests.map((r) => r[0])).toContain("ping");
  });

  it("when the server cuts a kept one, it is pinged at its time, not closed", async () => {
    const b = await bKeptAt1500(async (c) => {
      c.hangUp();
      await tick(0);
    });
    expect(b.requests.map((r) => r[0])).toContain("ping");
  });
});

describe("Connection.request in the background", () => {
  it("a request sent behind a background one keeps the process alive; the background one alone does not", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = () => {};
    };
    const conn = await connect();
    const peer = rt.peers[0] as PeerEnd;
    void conn.request(PING_REQUEST, "ping", parseOkReply, 5000, true).catch(() => {});
    expect(peer.refd).toBe(false);
    void conn.request(PING_REQUEST, "ping", parseOkReply, 5000).catch(() => {});
    expect(peer.refd).toBe(true);
    conn.close();
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
