/**
 * Type tests of the public API, checked by `npm run typecheck` under `tsc`
 * (strict, exactOptionalPropertyTypes) and `deno check`. Never run: every
 * `@ts-expect-error` line must be an error, or the check fails.
 */
import * as net from "node:net";
import {
  type AbandonedEvent,
  acquire,
  type Connection,
  DflockdClient,
  DistributedLock,
  DistributedSemaphore,
  fenceOfToken,
  type HeldLock,
  type HeldLocks,
  type LockErrorCode,
  type LockOptions,
  type LockSpec,
  type MultiLockOptions,
  NotLeaderError,
  parseFence,
  type ServerAddress,
  stats,
} from "../../src/index.ts";

declare const env: Record<string, string | undefined>;
declare const conn: Connection;

export async function accepted(): Promise<void> {
  // Readonly server tuples, as `as const` makes them.
  const servers = [
    ["10.0.0.1", 6388],
    ["10.0.0.2", 6388],
  ] as const;
  new DistributedLock({ key: "k", servers });
  new DflockdClient({ servers });
  // An optional field given a value that may be undefined (exactOptionalPropertyTypes).
  const options: LockOptions = { key: "k", auth: env.DFLOCKD_AUTH_TOKEN, leaseTtlS: undefined };
  const lock = new DistributedLock(options);
  await lock.acquire({ timeoutS: 2, signal: AbortSignal.timeout(5000) });
  await lock.withLock(async (signal: AbortSignal) => signal.aborted, { timeoutS: 30, signal: undefined });
  await lock.wait(undefined, { timeoutS: 3 });
  await lock.enqueue({ timeoutS: 1 });
  {
    await using held = await lock.hold({ timeoutS: 5 });
    const h: HeldLock = held;
    const fence: string | undefined = h.fence;
    const token: string = h.token;
    const ordered: bigint | undefined = h.fenceValue;
    const check: () => void = h.assertHeld;
    check.call(h);
    void [fence, token, ordered];
  }
  // Fences that order correctly.
  const newer: boolean = (lock.fenceValue ?? 0n) > parseFence("99");
  // v2.1 fences from the token, on request; the extraction alone; a cluster follower's error.
  new DflockdClient({ servers, fenceFromToken: true });
  const fromToken: bigint | undefined = fenceOfToken(lock.token ?? "");
  const err: unknown = undefined;
  if (err instanceof NotLeaderError) {
    const leader: string | undefined = err.leader;
    const code: LockErrorCode = err.code;
    void [leader, code === "NOT_LEADER"];
  }
  void fromToken;
  const asserted: () => void = () => lock.assertHeld();
  asserted();
  void newer;
  // A socket the user opened.
  await acquire(net.createConnection({ port: 6388 }), "k", 1);
  await acquire(conn, "k", 1);
  await stats({ host: "127.0.0.1", port: 6388, requestTimeoutMs: 1000 });
  await stats(conn);
  new DistributedSemaphore({ key: "s", limit: 2, tls: { ca: undefined } });
  // Several keys at once: locks and semaphore slots mixed, one budget, per-lock settings.
  const client = new DflockdClient({ servers });
  const keys: LockSpec[] = ["a", { key: "s", limit: 2 }];
  const multi: MultiLockOptions = { timeoutS: 5, signal: undefined, leaseTtlS: 20, onLost: (e) => e.key };
  const sum: number = await client.withLocks(keys, (signal: AbortSignal) => (signal.aborted ? 0 : 1), multi);
  {
    await using all = await client.holdAll(["a", "b"] as const, { timeoutS: 0 });
    const h: HeldLocks = all;
    const first: HeldLock | undefined = h.locks[0];
    const signal: AbortSignal = h.signal;
    const done: boolean = h.released;
    h.assertHeld();
    void [first, signal, done, h.get("a")?.fence];
  }
  void sum;
  // maxHoldS on a lock, a client and a client's lock; the abandoned hook's event.
  const holdClient = new DflockdClient({ maxHoldS: 30 });
  holdClient.lock("k", { maxHoldS: 0.5, hooks: { abandoned: (e: AbandonedEvent) => e.object === "HeldLock" } });
  new DistributedLock({ key: "k", maxHoldS: undefined, hooks: { abandoned: (e) => e.maxHoldS ?? e.key } });
  const code: LockErrorCode = "MAX_HOLD";
  void code;
}

export async function serverForms(): Promise<void> {
  // A plain array literal, inferred as (string | number)[][]: no tuple type needed.
  const pairs = [
    ["10.0.0.1", 6388],
    ["10.0.0.2", 6388],
  ];
  new DistributedLock({ key: "k", servers: pairs });
  // "host:port" strings, inferred as string[]; bracketed IPv6.
  const list = ["a:1", "b:2", "[::1]:6388"];
  new DistributedLock({ key: "k", servers: list });
  new DistributedSemaphore({ key: "s", limit: 2, servers: list });
  // Readonly arrays and `as const`, of strings, of pairs, and mixed.
  const fixed: readonly string[] = ["a:1"];
  new DflockdClient({ servers: fixed });
  new DflockdClient({ servers: ["a:1", "b:2"] as const });
  new DflockdClient({ servers: ["a:1", ["b", 2]] as const });
  const mixed = ["a:1", ["b", 2]];
  const client = new DflockdClient({ servers: mixed });
  await client.withLocks(["x", "y"], () => {});
  // The exported type, as a list element.
  const typed: ServerAddress[] = ["a:1", ["b", 2]];
  new DistributedLock({ key: "k", servers: typed });
  // stats(): one server in any form; the old options; a one-server list.
  await stats("10.0.0.1:6388");
  await stats(["10.0.0.1", 6388]);
  await stats(["10.0.0.1", 6388] as const);
  await stats({ server: "10.0.0.1:6388", requestTimeoutMs: 1000, tls: true });
  await stats({ server: ["10.0.0.1", 6388], auth: env.DFLOCKD_AUTH_TOKEN });
  await stats({ servers: ["10.0.0.1:6388"] });
  await stats({ host: "10.0.0.1", port: 6388, connectTimeoutMs: 500 });
  // One line for logs.
  const lock = new DistributedLock({ key: "k" });
  const line: string = lock.toString();
  const h = await lock.hold();
  const where: string = h.server;
  const held: string = `${h}`;
  const all: string = `${await client.holdAll(["a"])}`;
  const c: string = client.toString();
  void [line, where, held, all, c];
}

export function fenceFromTokenRefused(): void {
  // @ts-expect-error fenceFromToken is a boolean, not a version
  new DistributedLock({ key: "k", fenceFromToken: "2.1" });
}

export async function serverFormsRefused(): Promise<void> {
  // @ts-expect-error a server is a string or a [host, port] pair, not a bare port
  new DistributedLock({ key: "k", servers: [6388] });
  // @ts-expect-error servers is a list, even of one
  new DistributedLock({ key: "k", servers: "10.0.0.1:6388" });
  // @ts-expect-error a pair holds strings and numbers only
  new DflockdClient({ servers: [["h", true]] });
  // @ts-expect-error an object is not a server
  new DflockdClient({ servers: [{ host: "h", port: 1 }] });
  // @ts-expect-error stats() takes one server, not a bare port
  await stats(6388);
  // @ts-expect-error the one server of stats() options is `server`, and it is not a number
  await stats({ server: 6388 });
}

export async function refused(): Promise<void> {
  // @ts-expect-error a plain object is not a connection or socket
  await acquire({}, "k", 1);
  // @ts-expect-error typos in options are caught
  await stats({ hots: "x", prot: 1 });
  // @ts-expect-error unknown lock option
  new DistributedLock({ key: "k", timeout: 5 });
  const lock = new DistributedLock({ key: "k" });
  // @ts-expect-error unknown per-call option
  await lock.acquire({ timeout: 5 });
  // @ts-expect-error seconds options are numbers
  new DistributedLock({ key: "k", leaseTtlS: "60" });
  // @ts-expect-error the key is required
  new DistributedLock({ leaseTtlS: 60 });
  // @ts-expect-error a semaphore needs a limit
  new DistributedSemaphore({ key: "s" });
  // @ts-expect-error per-lock options of a client exclude where to connect
  new DflockdClient().lock("k", { servers: [["h", 1]] });
  const client = new DflockdClient();
  // @ts-expect-error a semaphore slot needs its limit
  await client.holdAll(["a", { key: "s" }]);
  // @ts-expect-error one budget for every key: timeoutS, not acquireTimeoutS
  await client.holdAll(["a"], { acquireTimeoutS: 5 });
  // @ts-expect-error where to connect belongs to the client
  await client.withLocks(["a"], () => {}, { servers: [["h", 1]] });
  // @ts-expect-error maxHoldS is a number of seconds
  new DflockdClient().lock("k", { maxHoldS: "30" });
  // @ts-expect-error the abandoned event names the object collected
  new DistributedLock({ key: "k", hooks: { abandoned: (e) => e.object === "DistributedPrimitive" } });
  // @ts-expect-error a fence's value is a bigint, not text that compares wrongly
  const text: string | undefined = lock.fenceValue;
  void text;
}
