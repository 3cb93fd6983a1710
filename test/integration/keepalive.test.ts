/**
 * Idle pooled connections and the server's read timeout (issue 22), in real
 * time: on a server that answers `ping` (dflockd v1.14+, the double's 1.16
 * and 2.1 forms) an idle connection outlives a 3 s read timeout and is lent
 * again; on one that does not (v1.10, the fence build) it is pinged once,
 * answered `error`, and closed before the server would cut it.
 * Run against the run's server, whichever it is (its own `ping()` says which
 * case applies), and against the double's 1.16 form, on every runtime.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ConnectionPool, POOL } from "../../src/pool.ts";
import { type FaultProxy, startProxy } from "../faults/proxy.ts";
import { currentServer, type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { connect, DistributedLock, type LockOptions, ping } from "../support/client.ts";
import { elapse, key, until } from "./helpers.ts";

const READ_TIMEOUT_S = 3;
const opened: Array<{ stop(): Promise<void> } | FaultProxy> = [];
afterEach(async () => {
  for (const o of opened.splice(0)) await ("stop" in o ? o.stop() : o.close());
});

/** What one proxied connection carried: the requests up and the replies down, as lines, and whether it ended. */
interface Traffic {
  up: string[];
  down: string[];
  ended: boolean;
  /** A line not yet complete, per direction. */
  rest: { up: string; down: string };
}

/** Start `server` behind a proxy that records each connection's traffic, calling `changed` on every chunk. */
async function watched(server: DflockdServer, changed: () => void): Promise<[FaultProxy, Map<number, Traffic>]> {
  const proxy = await startProxy({ host: server.host, port: server.port });
  opened.push(proxy);
  const conns = new Map<number, Traffic>();
  const decoder = new TextDecoder();
  proxy.observe((e) => {
    let t = conns.get(e.conn);
    if (t === undefined) {
      t = { up: [], down: [], ended: false, rest: { up: "", down: "" } };
      conns.set(e.conn, t);
    }
    if (e.chunk === undefined) t.ended = true;
    else {
      const lines = (t.rest[e.direction] + decoder.decode(e.chunk)).split("\n");
      t.rest[e.direction] = lines.pop() as string;
      t[e.direction].push(...lines);
    }
    changed();
  });
  return [proxy, conns];
}

/** A lock on `address` with a pool of its own, to see when a pinged connection is back among the idle ones. */
function withOwnPool(address: [string, number], prefix: string): [ConnectionPool, DistributedLock] {
  const pool = new ConnectionPool();
  const options = { key: key(prefix), servers: [address], serverReadTimeoutS: READ_TIMEOUT_S, [POOL]: pool };
  return [pool, new DistributedLock(options as LockOptions)];
}

/** The scenario on `server`; `pings`: whether it must answer ping (`undefined`: whatever it says). */
async function survives(server: DflockdServer, pings?: boolean): Promise<void> {
  const probe = await connect({ host: server.host, port: server.port });
  const answers = await ping(probe);
  probe.close();
  if (pings !== undefined) expect(answers).toBe(pings);

  let wake: () => void = () => {};
  const [proxy, conns] = await watched(server, () => wake());
  const next = (cond: () => boolean): Promise<void> =>
    new Promise<void>((resolve) => {
      wake = () => {
        if (cond()) resolve();
      };
      wake();
    });
  const [pool, lock] = withOwnPool(proxy.address, "keepalive");
  try {
    expect(await lock.acquire()).toBe(true);
    await lock.release();
    const releasedAt = performance.now();
    const first = (): Traffic => conns.get(1) as Traffic;
    const pings = (): number => first().up.filter((l) => l === "ping").length;
    if (answers) {
      // Two pings answered: by then the connection has been idle past the read timeout.
      await next(() => pings() >= 2 && first().down.length >= 4);
      expect(performance.now() - releasedAt).toBeGreaterThan(READ_TIMEOUT_S * 1000);
      // The answer has reached the proxy; the client takes the connection back as it reaches the client.
      await until(() => pool.idle === 1, 5_000, "the pinged connection to be idle again");
      expect(first().ended).toBe(false);
      expect(await lock.acquire()).toBe(true);
      await lock.release();
      expect(conns.size).toBe(1);
    } else {
      // Its one ping is answered `error` (the server read it, so its read timeout restarted), and the client
      // closes the connection a lending span later, before that read timeout could cut it (no second `error`).
      await next(() => first().ended);
      expect(pings()).toBe(1);
      expect(first().down).toHaveLength(3);
      expect(first().down.at(-1)).toBe("error");
      expect(performance.now() - releasedAt).toBeLessThan(2 * READ_TIMEOUT_S * 1000);
      expect(await lock.acquire()).toBe(true);
      await lock.release();
      expect(conns.size).toBe(2);
    }
  } finally {
    pool.close();
  }
}

describe("idle pooled connections past the server's read timeout", () => {
  it(`on the run's server (${currentServer() === "double" ? "the double" : "a real dflockd"})`, async () => {
    const server = await startDflockd(["--read-timeout", String(READ_TIMEOUT_S)]);
    opened.push(server);
    await survives(server);
  });

  it("after the event loop stalls past the read timeout, the server's cut is not taken for a server without ping", async () => {
    // The double runs in this process, so it stalls too: when the loop resumes, the client's reaper runs before the
    // double's read timeout cuts the connection with `error`. A ping sent then would get that `error` as its answer.
    const server = await startDflockd(["--read-timeout", String(READ_TIMEOUT_S), "--server-version", "1.16"], "double");
    opened.push(server);
    const [pool, lock] = withOwnPool(server.address, "stall");
    try {
      expect(await lock.acquire()).toBe(true);
      await lock.release();
      await elapse(1_000);
      const end = performance.now() + 2_500;
      while (performance.now() < end) {
        // stalled
      }
      await elapse(100);
      expect(await lock.acquire()).toBe(true);
      await lock.release();
      // Pinged about 2 s after the release, and again at 4 s: still idle in between, past the 3 s read timeout.
      await elapse(READ_TIMEOUT_S * 1000);
      expect(pool.idle).toBe(1);
    } finally {
      pool.close();
    }
  });

  it("on the double's 1.16 form: kept open with ping, and lent again", async () => {
    const server = await startDflockd(["--read-timeout", String(READ_TIMEOUT_S), "--server-version", "1.16"], "double");
    opened.push(server);
    await survives(server, true);
  });
});
