/**
 * Invariant I3: no loss is reported for a holding the user ended (release,
 * close, `client.close()`, an aborted acquire).
 *
 * Several locks of one DflockdClient hold on one shared connection (the pool
 * is told to share at once; by default a server first gets 8 connections of
 * its own), through the fault proxy, on the run's server. From the moment
 * `client.close()` is called, the proxy holds back every reply; once the
 * client's releases of every key have passed on to the server, the proxy
 * hangs up from the server's side, so that none of them is ever answered.
 * (A client that closes the connection instead of releasing meets no fault.)
 * Once the client has closed its end, and the server has let every key go,
 * neither `onLost` nor `hooks.lost` may have been called, and no holding's
 * signal may carry a LockLostError (every one must be aborted: the holdings
 * were closed).
 */
import { afterAll, beforeAll, expect, test } from "vitest";
import { ConnectionPool } from "../../src/pool.ts";
import { type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { DflockdClient, LockLostError } from "../support/client.ts";
import { RUNTIME } from "../support/runtime.ts";
import { startProxy } from "./proxy.ts";
import { RawConn } from "./raw.ts";
import { runServer, serverLabel } from "./servers.ts";

const HOLDINGS = 3;
const spec = runServer();
let server: DflockdServer | undefined;

beforeAll(async () => {
  server = await startDflockd([...spec.flags], spec.choice);
});
afterAll(async () => {
  await server?.stop();
});

/** Complete `[cmd, key, arg]` requests in `text`. */
function requests(text: string): string[][] {
  const lines = text.split("\n");
  lines.pop();
  const out: string[][] = [];
  for (let i = 0; i + 2 < lines.length; i += 3) out.push(lines.slice(i, i + 3));
  return out;
}

/** `promise`, or a rejection saying `what` did not happen within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

test("client.close(): the server drops the shared connection before answering the releases, and no loss is reported", async () => {
  const s = server as DflockdServer;
  const proxy = await startProxy({ port: s.port });
  const reported: string[] = [];
  const tag = Math.floor(Math.random() * 2 ** 32).toString(36);
  const keys = Array.from({ length: HOLDINGS }, (_, i) => `close-drop-${RUNTIME}-${tag}-${i}`);
  // A client's pool takes this when it is made: share from the first connection on.
  const shareAfter = ConnectionPool.defaultShareAfter;
  ConnectionPool.defaultShareAfter = 0;
  let client: DflockdClient;
  try {
    client = new DflockdClient({
      servers: [proxy.address],
      leaseTtlS: 10,
      hooks: { lost: (e) => void reported.push(`hooks.lost ${e.key}: ${e.error.message}`) },
    });
  } finally {
    ConnectionPool.defaultShareAfter = shareAfter;
  }
  const contender: RawConn[] = [];
  try {
    const locks = keys.map((k) =>
      client.lock(k, { onLost: (e) => void reported.push(`onLost ${e.key}: ${e.message}`) }),
    );
    for (const lock of locks) expect(await lock.acquire(), `acquire ${lock.key}`).toBe(true);
    expect(proxy.connections(), "the holdings share one connection").toBe(1);
    const signals = locks.map((l) => l.signal as AbortSignal);

    // From now on no reply reaches the client; once every release has passed, the server side hangs up.
    proxy.setDelay("down", () => 60_000);
    let sent = "";
    let hungUp = false;
    const clientClosed = new Promise<void>((resolve) =>
      proxy.observe((e) => {
        if (e.direction !== "up") return;
        if (e.chunk === undefined) {
          if (e.byProxy !== true) resolve();
          return;
        }
        sent += new TextDecoder().decode(e.chunk);
        const released = new Set(
          requests(sent).flatMap(([cmd, key]) => (cmd === "r" && key !== undefined ? [key] : [])),
        );
        if (!hungUp && keys.every((k) => released.has(k))) {
          hungUp = true;
          // After this chunk has been passed on (it is, right after its observers return).
          queueMicrotask(() => proxy.hangUp());
        }
      }),
    );
    client.close();
    await within(clientClosed, 10_000, "the client's closing of its connection");

    // The server has let every key go (the proxy's upstream is closed either way): a raw client gets each at once.
    const raw = await RawConn.open(s.host, s.port);
    contender.push(raw);
    const grants = await Promise.all(keys.map((k) => raw.request("l", k, "5 10")));
    expect(
      grants.map((g) => g.line.split(" ")[0]),
      "the server let every key go",
    ).toEqual(keys.map(() => "ok"));

    const lostSignals = signals.flatMap((sig, i) => (sig.reason instanceof LockLostError ? [keys[i]] : []));
    const notAborted = signals.flatMap((sig, i) => (sig.aborted ? [] : [keys[i]]));
    const releases = requests(sent).filter(([cmd]) => cmd === "r").length;
    console.log(
      `[${RUNTIME}, ${serverLabel(spec)}] client.close() with ${HOLDINGS} holdings on one connection: ` +
        (hungUp
          ? `${releases} releases sent, the proxy hung up with their replies held back`
          : `${releases} releases sent, the client closed the connection itself`) +
        `; onLost ${reported.filter((r) => r.startsWith("onLost")).length}, ` +
        `hooks.lost ${reported.filter((r) => r.startsWith("hooks.lost")).length}, ` +
        `signals with a LockLostError ${lostSignals.length}, not aborted ${notAborted.length}`,
    );
    expect({ reported, lostSignals, notAborted }).toEqual({ reported: [], lostSignals: [], notAborted: [] });
  } finally {
    client.close();
    for (const c of contender) c.close();
    await proxy.close();
  }
}, 30_000);
