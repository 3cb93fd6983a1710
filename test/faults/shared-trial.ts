/**
 * The shared-connection trial, for invariant I1: every holding on a
 * connection is told (state `lost`, signal aborted, `onLost` and `hooks.lost`
 * called) before the client closes, abandons or reuses that connection.
 *
 * A holder process (shared-holder.ts, the runtime under test) takes locks
 * through a {@link FaultProxy} with one `DflockdClient` until about 60 of them
 * share one connection. For each key on that connection a waiter here queues
 * directly on the server (a blocking `l`). Then the proxy holds back every
 * reply on the shared connection, so renewals go unconfirmed until the client
 * gives the connection up: the server, which got the renewals, keeps every
 * lock until the connection closes, then grants them all to the waiters.
 *
 * Per key, on one clock (this process's `performance.now()`, the holder's
 * times mapped onto it; see shared-child.ts), certain facts only:
 * - told late: the waiter's grant arrived before the holder was told (the
 *   first of signal, `onLost`, `hooks.lost`), or the holder never was;
 * - not fully told: the grant arrived before all three had told it;
 * - told after the hang-up: told after the proxy saw the client close the
 *   connection (which breaks I1 whoever wins the race to the server);
 * - margin: grant arrival − told (positive: told first).
 */
import type { DflockdServer } from "../harness/dflockd.ts";
import { RUNTIME } from "../support/runtime.ts";
import { type FaultProxy, startProxy } from "./proxy.ts";
import { RawConn, type Reply, sleep } from "./raw.ts";
import { type ClockOffset, Holder } from "./shared-child.ts";
import type { Channel, FinalRecord, ToldRecord } from "./shared-holder.ts";

/** How to run one trial. */
export interface SharedOptions {
  readonly server: DflockdServer;
  readonly leaseS: number;
  /** Locks the holder takes: the first `DEFAULT_SHARE_AFTER` get a connection each, the rest share. */
  readonly locks: number;
  /** Makes the keys unique. */
  readonly tag: string;
}

/** One key on the shared connection (times: this process's clock, ms). */
export interface KeyResult {
  readonly key: string;
  /** When the holder was first told (midpoint of the clock bounds); `undefined`: never. */
  readonly toldAt: number | undefined;
  /** Ways that never told it. */
  readonly missing: Channel[];
  /** When the waiter's grant arrived; `undefined`: never. */
  readonly grantAt: number | undefined;
  readonly late: boolean;
  /** Told after the grant arrived, by this much (certain part, ms). */
  readonly lateMs: number | undefined;
  readonly notFullyTold: boolean;
  readonly afterHangUp: boolean;
  /** Told this long after the client hung up (certain part, ms). */
  readonly afterHangUpMs: number | undefined;
  /** Grant arrival − told (ms). */
  readonly marginMs: number | undefined;
}

/** Everything one trial found. */
export interface SharedRecord {
  readonly runtime: string;
  readonly tag: string;
  readonly locks: number;
  /** Proxied connection that carried the most acquires, and how many. */
  sharedConn: number;
  sharedKeys: number;
  /** Half the width of the clock-offset bounds (ms). */
  clockErrorMs: number;
  faultAt?: number;
  hungUpAt?: number | undefined;
  keys: KeyResult[];
  /** Why the holder was told, distinct messages. */
  reasons: string[];
  /** Holdings told while their state was not `lost`, or not `lost` with their signal aborted at the end. */
  badState: string[];
  /** Keys not on the shared connection that were lost too. */
  otherLost: number;
  note?: string;
}

/** Run one trial from fresh keys to its record. Bounded: ends by itself. */
export async function runSharedTrial(o: SharedOptions): Promise<SharedRecord> {
  const rec: SharedRecord = {
    runtime: RUNTIME,
    tag: o.tag,
    locks: o.locks,
    sharedConn: 0,
    sharedKeys: 0,
    clockErrorMs: Number.NaN,
    keys: [],
    reasons: [],
    badState: [],
    otherLost: 0,
  };
  const proxy: FaultProxy = await startProxy({ host: o.server.host, port: o.server.port });
  const acquires = watchAcquires(proxy);
  let faulted = 0;
  proxy.setDelay("down", (_chunk, _dir, conn) => (conn === faulted ? 600_000 : 0));
  const raw: RawConn[] = [];
  let holder: Holder | undefined;
  try {
    const prefix = `shared-${o.tag}-${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
    holder = await Holder.start([proxy.host, String(proxy.port), String(o.locks), String(o.leaseS), prefix], o.tag);
    let offset = await holder.calibrate(20);
    holder.send("go");
    await holder.next((m) => (m.t === "held" ? m.keys : undefined), 60_000);

    // The shared connection: the one that carried the most acquires.
    let shared: string[] = [];
    for (const [conn, keys] of acquires.byConn) {
      if (keys.length > shared.length) [rec.sharedConn, shared] = [conn, keys];
    }
    rec.sharedKeys = shared.length;
    const grants = await queueWaiters(o.server, shared, raw);
    const replies: Array<Reply | undefined> = [];
    grants.forEach((g, i) => void g.then((r) => (replies[i] = r)));

    faulted = rec.sharedConn;
    rec.faultAt = performance.now();
    const told = (): Map<string, ToldRecord> => latestTold(holder?.messages ?? []);
    const allTold = (): boolean => {
      const t = told();
      return shared.every((k) => Object.keys(t.get(k)?.at ?? {}).length === 3);
    };
    const boundMs = (3 * o.leaseS + 5) * 1000;
    const [granted] = await Promise.all([withBound(Promise.all(grants), boundMs), holder.until(allTold, boundMs)]);
    if (granted === undefined) rec.note = "not every waiter was granted within the bound";
    rec.hungUpAt = acquires.hungUp.get(rec.sharedConn);

    offset = await holder.calibrate(20, offset);
    rec.clockErrorMs = (offset.hi - offset.lo) / 2;
    holder.send("end");
    const final = await holder.next((m) => (m.t === "final" ? m.holdings : undefined), 10_000);
    judge(rec, shared, told(), replies, offset, final);
  } catch (err) {
    rec.note = `the trial failed: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    if (rec.note !== undefined && holder !== undefined) rec.note += ` (the holder's log: ${holder.logFile})`;
    holder?.kill(rec.note !== undefined);
    for (const c of raw) c.close();
    await proxy.close();
  }
  return rec;
}

/** Keys acquired (`l` requests) per proxied connection, and when the client hung up on each. */
function watchAcquires(proxy: FaultProxy): { byConn: Map<number, string[]>; hungUp: Map<number, number> } {
  const byConn = new Map<number, string[]>();
  const hungUp = new Map<number, number>();
  const text = new Map<number, string>();
  const decoder = new TextDecoder();
  proxy.observe((e) => {
    if (e.direction !== "up") return;
    if (e.chunk === undefined) {
      if (!e.byProxy && !hungUp.has(e.conn)) hungUp.set(e.conn, e.at);
      return;
    }
    const lines = ((text.get(e.conn) ?? "") + decoder.decode(e.chunk)).split("\n");
    // Whole requests only: three lines each, the last piece unfinished.
    const whole = Math.floor((lines.length - 1) / 3) * 3;
    for (let i = 0; i < whole; i += 3) {
      if (lines[i] !== "l") continue;
      const keys = byConn.get(e.conn) ?? [];
      keys.push(lines[i + 1] as string);
      byConn.set(e.conn, keys);
    }
    text.set(e.conn, lines.slice(whole).join("\n"));
  });
  return { byConn, hungUp };
}

/**
 * A waiter per key, queued on the server with a blocking `l`, each on a
 * connection of its own; resolves once `stats` shows every one queued.
 * Returns each waiter's reply (`undefined` if its connection closed first).
 */
async function queueWaiters(
  server: DflockdServer,
  keys: string[],
  raw: RawConn[],
): Promise<Promise<Reply | undefined>[]> {
  const conns = await Promise.all(keys.map(() => RawConn.open(server.host, server.port)));
  raw.push(...conns);
  const grants = conns.map((c, i) => c.request("l", keys[i] as string, "60 60").catch(() => undefined));
  const stats = await RawConn.open(server.host, server.port);
  raw.push(stats);
  for (const until = performance.now() + 10_000; ; ) {
    const queued = waitingKeys((await stats.request("stats", "_", "")).line);
    if (keys.every((k) => queued.has(k))) return grants;
    if (performance.now() > until) throw new Error("the waiters were not all queued within 10 s");
    await sleep(5);
  }
}

/** Lock keys with a waiter, in a `stats` reply line. */
function waitingKeys(line: string): Set<string> {
  const out = new Set<string>();
  if (!line.startsWith("ok ")) return out;
  const body = JSON.parse(line.slice(3)) as { locks?: Array<{ key?: string; waiters?: number }> | null };
  for (const l of body.locks ?? []) if (typeof l.key === "string" && (l.waiters ?? 0) > 0) out.add(l.key);
  return out;
}

/** The latest record per key (the holder sends a key's record again as more ways tell it). */
function latestTold(messages: readonly { t: string }[]): Map<string, ToldRecord> {
  const out = new Map<string, ToldRecord>();
  for (const m of messages) if (m.t === "told") out.set((m as ToldRecord).key, m as ToldRecord);
  return out;
}

/** `promise`, or `undefined` after `ms`. */
async function withBound<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

const CHANNELS: readonly Channel[] = ["signal", "onLost", "hook"];

/** `reason` with `key`, ports and fractions of ms replaced, so that trials' reasons compare equal. */
function blur(reason: string, key: string): string {
  return reason
    .split(key)
    .join("<key>")
    .replace(/:\d+\b/g, ":<port>")
    .replace(/(\d+)\.\d+ ms/g, "$1 ms");
}

/** Fill in the per-key verdicts (certain ones only: see the clock bounds). */
function judge(
  rec: SharedRecord,
  shared: readonly string[],
  told: Map<string, ToldRecord>,
  replies: ReadonlyArray<Reply | undefined>,
  offset: ClockOffset,
  final: readonly FinalRecord[],
): void {
  const mid = (offset.lo + offset.hi) / 2;
  const reasons = new Set<string>();
  shared.forEach((key, i) => {
    const t = told.get(key);
    const times = CHANNELS.map((c) => t?.at[c]).filter((x): x is number => x !== undefined);
    // The same reason for every key: with the key, the server's port and the budget's decimals blurred.
    if (t?.reason !== undefined) reasons.add(blur(t.reason, key));
    const reply = replies[i];
    const grantAt = reply?.line.startsWith("ok ") === true ? reply.arrivedAt : undefined;
    // Holder time c is parent time in [c - hi, c - lo].
    const first = times.length === 0 ? undefined : Math.min(...times);
    const last = times.length === 0 ? undefined : Math.max(...times);
    const missing = CHANNELS.filter((c) => t?.at[c] === undefined);
    const lateBy = grantAt === undefined || first === undefined ? undefined : first - offset.hi - grantAt;
    const hung = rec.hungUpAt;
    const afterBy = hung === undefined || first === undefined ? undefined : first - offset.hi - hung;
    rec.keys.push({
      key,
      toldAt: first === undefined ? undefined : first - mid,
      missing,
      grantAt,
      late: grantAt !== undefined && (first === undefined || (lateBy as number) > 0),
      lateMs: lateBy !== undefined && lateBy > 0 ? lateBy : undefined,
      notFullyTold: grantAt !== undefined && (missing.length > 0 || (last as number) - offset.hi - grantAt > 0),
      afterHangUp: afterBy !== undefined && afterBy > 0,
      afterHangUpMs: afterBy !== undefined && afterBy > 0 ? afterBy : undefined,
      marginMs: grantAt === undefined || first === undefined ? undefined : grantAt - (first - mid),
    });
  });
  rec.reasons = [...reasons];
  const mine = new Set(shared);
  rec.otherLost = [...told.keys()].filter((k) => !mine.has(k)).length;
  rec.badState = [
    ...shared.flatMap((k) => {
      const state = told.get(k)?.state;
      return state === undefined || state === "lost" ? [] : [`${k}: told while its state was ${state}`];
    }),
    ...final
      .filter((f) => mine.has(f.key) && (f.state !== "lost" || !f.aborted))
      .map((f) => `${f.key}: at the end, state ${f.state}${f.aborted ? "" : ", signal not aborted"}`),
  ];
}
