/**
 * `error_not_leader` to a holding's renewals and release, on the scripted
 * in-memory peer with fake timers: the machine's `notLeader` event as the
 * driver carries it out (renewals.ts, release.ts). The same replies against
 * real sockets: test/integration/cluster-and-v21.test.ts.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { AcquireTimeoutError, LockLostError } from "../../src/errors.ts";
import { NotLeaderError } from "../../src/leader.ts";
import { DistributedLock } from "../../src/primitive.ts";
import { notLeaderPause } from "../../src/renewals.ts";
import { tick, usePoolTest } from "../support/pool.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
let port = 7600;
let servers: [string, number][];
beforeEach(() => {
  rt = runtime();
  servers = [["127.0.0.1", ++port]];
});

/** Grants with a 10 s lease and answers releases; renewal n (from 1) as `renew` says, or holds it back (`undefined`). */
function script(renew: (n: number) => string | undefined): void {
  rt.onPeer = (peer) => {
    let n = 0;
    peer.onRequest = ([cmd]) => {
      if (cmd === "l") peer.send(`ok ${token(1)} 10\n`);
      else if (cmd === "n") {
        const line = renew(++n);
        if (line !== undefined) peer.send(line);
      } else peer.send("ok\n");
    };
  };
}

async function holding(): Promise<[DistributedLock, PeerEnd, LockLostError[]]> {
  const lost: LockLostError[] = [];
  const lock = new DistributedLock({ key: "k", leaseTtlS: 10, servers, onLost: (e) => lost.push(e) });
  expect(await lock.acquire()).toBe(true);
  return [lock, rt.peers[0] as PeerEnd, lost];
}

const renewals = (peer: PeerEnd): number => peer.requests.filter(([cmd]) => cmd === "n").length;

/** Let fake time pass until the peer has seen `n` renewals (at most `maxMs`), in 10 ms steps. */
async function untilRenewals(peer: PeerEnd, n: number, maxMs = 20_000): Promise<void> {
  for (let t = 0; renewals(peer) < n; t += 10) {
    if (t > maxMs) throw new Error(`no renewal ${n} within ${maxMs} ms`);
    await tick(10);
  }
}

describe("a renewal answered error_not_leader", () => {
  it("is no loss: held, and renewed again after the pause (a second here), then as usual", async () => {
    script((n) => (n === 1 ? "error_not_leader 10.0.0.2:6388\n" : "ok 10\n"));
    const [lock, peer, lost] = await holding();
    await untilRenewals(peer, 1);
    await tick(0);
    expect(lock.state).toBe("held");
    expect(lost).toEqual([]);
    await tick(990);
    expect(renewals(peer)).toBe(1);
    await tick(20);
    expect(renewals(peer)).toBe(2);
    await tick(0);
    expect(lock.state).toBe("held");
    await tick(30_000);
    expect(lost).toEqual([]);
    expect(renewals(peer)).toBeGreaterThan(4);
    await lock.release();
  });

  it("every time: tried again and again, and lost only at the loss deadline", async () => {
    script(() => "error_not_leader\n");
    const [lock, peer, lost] = await holding();
    const start = performance.now();
    // 10 s lease, 500 ms margin: provable until 9.5 s after the `l` was sent.
    await tick(9_400);
    expect(lost).toEqual([]);
    expect(lock.held).toBe(true);
    expect(renewals(peer)).toBeGreaterThanOrEqual(3);
    await tick(200);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.message).toMatch(/no renewal was confirmed before the lease's deadline/);
    expect(performance.now() - start).toBeGreaterThanOrEqual(9_500);
    await expect(lock.release()).rejects.toBe(lost[0]);
  });

  it("while releasing is left to the release's own reply", async () => {
    let held: (() => void) | undefined;
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => {
        if (cmd === "l") peer.send(`ok ${token(1)} 10\n`);
        else if (cmd === "n") held = () => peer.send("error_not_leader\n");
        else peer.send("ok\n");
      };
    };
    const [lock, peer, lost] = await holding();
    await untilRenewals(peer, 1);
    const release = lock.release();
    expect(lock.state).toBe("releasing");
    held?.();
    await release;
    expect(peer.requests.map(([cmd]) => cmd)).toEqual(["l", "n", "r"]);
    expect(lock.state).toBe("released");
    expect(lost).toEqual([]);
  });
});

describe("a release answered error_not_leader", () => {
  it("rejects with the NotLeaderError, ends the holding and tells no loss", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(1)} 10\n` : "error_not_leader 10.0.0.2:6388\n");
    };
    const [lock, , lost] = await holding();
    const signal = lock.signal as AbortSignal;
    const err = await lock.release().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(err).toMatchObject({ leader: "10.0.0.2:6388" });
    expect(lock.state).toBe("released");
    expect(lost).toEqual([]);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).not.toBeInstanceOf(LockLostError);
  });
});

describe("an acquisition redirected after the follower blocked", () => {
  const follower = 7690;
  const leader = 7691;
  const twoServers = (): [string, number][] => [
    ["127.0.0.1", follower],
    ["127.0.0.1", leader],
  ];

  /** The follower answers `error_not_leader` `afterMs` into a blocking `l`; the leader answers `timeout` when its wait ends. */
  function stepDownAfter(afterMs: number): void {
    rt.onPeer = (peer) => {
      if (peer.target.port === follower) {
        peer.onRequest = () => setTimeout(() => peer.send(`error_not_leader 127.0.0.1:${leader}\n`), afterMs);
      } else {
        peer.onRequest = ([cmd, , seconds]) => {
          if (cmd === "l") setTimeout(() => peer.send("timeout\n"), Number(seconds) * 1000);
          else peer.send("ok\n");
        };
      }
    };
  }

  const leaderWaits = (): string[] =>
    rt.peers
      .filter((p) => p.target.port === leader)
      .flatMap((p) => p.requests)
      .filter(([cmd]) => cmd === "l")
      .map((r) => r[2] as string);

  it("asks the leader only for the whole seconds left of timeoutS, and times out at the call's deadline", async () => {
    stepDownAfter(3_500);
    const lock = new DistributedLock({ key: "k", servers: twoServers(), shardingStrategy: () => 0 });
    const start = performance.now();
    let done: number | undefined;
    const acquiring = lock.acquire({ timeoutS: 5 }).then((v) => {
      done = performance.now();
      return v;
    });
    await tick(3_600);
    expect(rt.peers[0]?.requests[0]).toEqual(["l", "k", "5"]);
    expect(leaderWaits().at(-1)).toBe("1");
    await tick(1_500);
    expect(await acquiring).toBe(false);
    expect((done as number) - start).toBeLessThanOrEqual(5_000);
    expect(lock.state).toBe("released");
  });

  it("with no whole second left, sends nothing to the leader and times out as a timeout reply would", async () => {
    stepDownAfter(4_500);
    const lock = new DistributedLock({ key: "k", servers: twoServers(), shardingStrategy: () => 0 });
    const outcome: unknown[] = [];
    void lock.acquire({ timeoutS: 5 }).then((v) => outcome.push(v));
    await tick(4_500);
    expect(outcome).toEqual([false]);
    expect(leaderWaits()).toEqual([]);
    expect(lock.state).toBe("released");
    // withLock() and hold() report it as their timeouts: AcquireTimeoutError.
    void lock.withLock(() => undefined, { timeoutS: 5 }).catch((e: unknown) => outcome.push(e));
    await tick(4_500);
    expect(outcome[1]).toBeInstanceOf(AcquireTimeoutError);
    expect(leaderWaits()).toEqual([]);
    lock.close();
  });
});

describe("notLeaderPause", () => {
  it("is a second, or a quarter of the provable lease left if that is less, never negative", () => {
    expect(notLeaderPause(10_000, 0)).toBe(1000);
    expect(notLeaderPause(2_000, 1_000)).toBe(250);
    expect(notLeaderPause(1_000, 2_000)).toBe(0);
  });
});
