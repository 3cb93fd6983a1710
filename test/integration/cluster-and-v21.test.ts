/**
 * Two forms of upstream's newer servers, against scripted fakes
 * (test/support/scripted-cluster.ts), since neither the double nor a real
 * dflockd we can run answers them: a cluster follower's
 * `error_not_leader [host:port]` (upstream's unreleased cluster mode), and
 * v2.1's tokens whose first 16 hex digits are the fence.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  DflockdClient,
  DistributedLock,
  fenceOfToken,
  LockLostError,
  NotLeaderError,
  ServerError,
} from "../support/client.ts";
import { fencedToken, type ScriptedServer, startScripted } from "../support/scripted-cluster.ts";
import { key, until, useDflockd } from "./helpers.ts";

const TOKEN = "0123456789abcdef0123456789abcdef";
const running: ScriptedServer[] = [];
const clients: DflockdClient[] = [];

async function fake(script: Parameters<typeof startScripted>[0]): Promise<ScriptedServer> {
  const s = await startScripted(script);
  running.push(s);
  return s;
}

function client(options: ConstructorParameters<typeof DflockdClient>[0]): DflockdClient {
  const c = new DflockdClient(options);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

/** Grants every `l` with a 2 s lease, and releases; renewals as `renew` says (by renewal number, from 1). */
function holder(renew: (n: number) => string): Parameters<typeof startScripted>[0] {
  let renewals = 0;
  return (r) => {
    if (r.cmd === "l") return `ok ${TOKEN} 2`;
    if (r.cmd === "n") return renew(++renewals);
    if (r.cmd === "r") return "ok";
    return "error";
  };
}

describe("error_not_leader on a renewal (scripted fake follower)", () => {
  it("is no loss: the holding stays held and the renewal is tried again, after a pause", async () => {
    const server = await fake(holder((n) => (n === 1 ? "error_not_leader 127.0.0.1:1" : "ok 2")));
    const lost: LockLostError[] = [];
    const lock = new DistributedLock({
      key: key(),
      servers: [server.address],
      leaseTtlS: 2,
      onLost: (e) => lost.push(e),
    });
    expect(await lock.acquire()).toBe(true);
    await until(() => server.count("n") >= 2, 5_000, "a second renewal");
    const [first, second] = server.requests.filter((r) => r.cmd === "n");
    expect(first?.conn).toBe(second?.conn);
    // The server has seen the request; its reply may still be on the way.
    await until(() => lock.state === "held", 2_000, "the renewal's reply");
    expect(lock.held).toBe(true);
    expect(lock.state).toBe("held");
    expect(lost).toEqual([]);
    expect(lock.signal?.aborted).toBe(false);
    await lock.release();
    expect(lost).toEqual([]);
  });

  it("answered every time, the loss comes from the deadline, not from the reply", async () => {
    const server = await fake(holder(() => "error_not_leader"));
    const lost: LockLostError[] = [];
    const lock = new DistributedLock({
      key: key(),
      servers: [server.address],
      leaseTtlS: 2,
      onLost: (e) => lost.push(e),
    });
    const grantedAt = performance.now();
    await lock.acquire();
    await until(() => server.count("n") >= 1, 5_000, "a renewal");
    // The follower's answer came; the lease is still provable (it is lost 1.7 s after the `l` was sent).
    await until(() => lost.length > 0 || server.count("n") >= 2, 5_000, "a retry or a loss");
    expect(server.count("n")).toBeGreaterThanOrEqual(2);
    await until(() => lost.length > 0, 5_000, "the loss");
    expect(performance.now() - grantedAt).toBeGreaterThanOrEqual(1_500);
    expect(lost[0]).toBeInstanceOf(LockLostError);
    expect(lost[0]?.message).toMatch(/no renewal was confirmed before the lease's deadline/);
    expect(lock.state).toBe("lost");
    await expect(lock.release()).rejects.toBe(lost[0]);
  });
});

describe("error_not_leader on a release (scripted fake follower)", () => {
  it("rejects the release with a NotLeaderError, and reports no loss", async () => {
    const server = await fake((r) => (r.cmd === "l" ? `ok ${TOKEN} 30` : r.cmd === "r" ? "error_not_leader" : "error"));
    const lost: unknown[] = [];
    const lock = new DistributedLock({ key: key(), servers: [server.address], onLost: (e) => lost.push(e) });
    await lock.acquire();
    const signal = lock.signal as AbortSignal;
    const err = await lock.release().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(err).toMatchObject({ code: "NOT_LEADER", leader: undefined, status: "error_not_leader" });
    expect(lock.state).toBe("released");
    expect(lost).toEqual([]);
    expect(signal.reason).not.toBeInstanceOf(LockLostError);
  });
});

describe("error_not_leader on an acquire (scripted fake followers)", () => {
  const first = (): number => 0;

  it("is followed to the leader it names when that is a configured server", async () => {
    const leader = await fake(holder(() => "ok 2"));
    const follower = await fake(() => `error_not_leader ${leader.address}`);
    const told: string[] = [];
    const c = client({
      servers: [follower.address, leader.address],
      shardingStrategy: first,
      hooks: { acquired: (e) => told.push(e.server) },
    });
    const lock = c.lock(key());
    expect(await lock.acquire()).toBe(true);
    expect(follower.count("l")).toBe(1);
    expect(leader.count("l")).toBe(1);
    // Named as the server that granted it, not the one the sharding picked.
    expect(lock.server).toBe(leader.address);
    expect(told).toEqual([leader.address]);
    await lock.release();
    expect(leader.count("r")).toBe(1);
    expect(follower.count("r")).toBe(0);
    const held = await c.lock(key()).hold();
    expect(held.server).toBe(leader.address);
    await held.release();
    // enqueue() too.
    const two = c.lock(key());
    leader.requests.length = 0;
    const l2 = await fake((r) => (r.cmd === "e" ? `acquired ${TOKEN} 30` : r.cmd === "r" ? "ok" : "error"));
    const f2 = await fake(() => `error_not_leader ${l2.address}`);
    const c2 = client({ servers: [f2.address, l2.address], shardingStrategy: first });
    expect(await c2.lock(two.key).enqueue()).toBe("acquired");
    expect(l2.count("e")).toBe(1);
  });

  it("is not followed to an address that is not configured: the typed error, after one request", async () => {
    const follower = await fake(() => "error_not_leader 10.255.255.1:6388");
    const lock = client({ servers: [follower.address] }).lock(key());
    const err = await lock.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(err).toBeInstanceOf(ServerError);
    expect(err).toMatchObject({ code: "NOT_LEADER", leader: "10.255.255.1:6388" });
    expect((err as Error).message).toContain('the leader is "10.255.255.1:6388"');
    expect(follower.count("l")).toBe(1);
    expect(lock.state).toBe("released");
    const bare = await fake(() => "error_not_leader");
    const none = await client({ servers: [bare.address] })
      .lock(key())
      .acquire()
      .catch((e: unknown) => e);
    expect(none).toMatchObject({ code: "NOT_LEADER", leader: undefined });
  });

  it("is followed at most twice: followers naming each other end in the typed error", async () => {
    let b: ScriptedServer | undefined;
    const a = await fake(() => `error_not_leader ${b?.address}`);
    b = await fake(() => `error_not_leader ${a.address}`);
    const lock = client({ servers: [a.address, b.address], shardingStrategy: first }).lock(key());
    const err = await lock.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(a.count("l") + b.count("l")).toBe(3);
    expect(a.count("l")).toBe(2);
  });
});

describe("v2.1 fences from the token (scripted fake)", () => {
  const base = 1_716_980_460_237_870_309n;

  function v21(): Parameters<typeof startScripted>[0] {
    let fence = base;
    return (r) => {
      if (r.cmd === "l") return `ok ${fencedToken(++fence)} 30`;
      if (r.cmd === "r") return "ok";
      return "error";
    };
  }

  it("with fenceFromToken, lock.fence, fenceValue and HeldLock.fence are the token's, rising per grant", async () => {
    const server = await fake(v21());
    const c = client({ servers: [server.address], fenceFromToken: true });
    const a = c.lock(key());
    await a.acquire();
    expect(a.fence).toBe(String(base + 1n));
    expect(a.fenceValue).toBe(base + 1n);
    expect(fenceOfToken(fencedToken(base + 1n))).toBe(base + 1n);
    await a.release();
    const held = await c.lock(key()).hold();
    expect(held.fence).toBe(String(base + 2n));
    expect(held.fenceValue).toBe(base + 2n);
    expect((held.fenceValue as bigint) > (a.fenceValue ?? 0n)).toBe(true);
    await held.release();
  });

  it("without it, no fence: a v1.x token has the same shape but is random", async () => {
    const server = await fake(v21());
    const lock = new DistributedLock({ key: key(), servers: [server.address] });
    await lock.acquire();
    expect(lock.fence).toBeUndefined();
    expect(lock.fenceValue).toBeUndefined();
    await lock.release();
  });

  it("a fence field in the reply (the later fence branch) wins over the token's", async () => {
    const server = await fake((r) => (r.cmd === "l" ? `ok ${fencedToken(base)} 30 7` : "ok"));
    const lock = new DistributedLock({ key: key(), servers: [server.address], fenceFromToken: true });
    await lock.acquire();
    expect(lock.fence).toBe("7");
    await lock.release();
  });
});

describe("the run's own server (the double, or a real dflockd by DFLOCKD_SERVER=real)", () => {
  const server = useDflockd();

  it("a fence field in its grants is the fence, with or without fenceFromToken; without one, only the option gives one", async () => {
    const at = { servers: [server().address] };
    const plain = new DistributedLock({ key: key(), ...at });
    const fromToken = new DistributedLock({ key: key(), ...at, fenceFromToken: true });
    await plain.acquire();
    await fromToken.acquire();
    const token = fromToken.token as string;
    if (plain.fence !== undefined) {
      // The later fence build: its decimal field, rising, never the token's (random there).
      expect(plain.fence).toMatch(/^\d+$/);
      expect(fromToken.fenceValue).toBeGreaterThan(plain.fenceValue as bigint);
      expect(fromToken.fence).not.toBe(String(fenceOfToken(token)));
    } else {
      // No field (v1.10, the double's default form): nothing unless asked, then the token's 16 hex digits.
      expect(plain.fenceValue).toBeUndefined();
      expect(fromToken.fenceValue).toBe(fenceOfToken(token));
    }
    await plain.release();
    await fromToken.release();
  });
});
