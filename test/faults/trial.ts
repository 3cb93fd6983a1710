/**
 * One fault-injection trial: does the holder learn of a loss before anyone
 * else can hold the lock?
 *
 * A holder (this package's DistributedLock) takes a fresh key through a
 * {@link FaultProxy}; a contender takes the same key directly on the server,
 * by polling (`l key 0` every 2-5 ms) or by queueing (`l key <timeout>`).
 * Everything is timed on one clock, `performance.now()`:
 *
 * - `holderAcquiredAt`: the holder's `acquire()` resolved `true`;
 * - `noticeAt`: the holder was told of the loss (`onLost` or `lock.signal`
 *   aborting, whichever came first);
 * - the contender's grant: the server granted it at some instant between
 *   `earliestGrantAt` (when the request that got it was sent, or later if a
 *   `stats` probe saw it still queued afterwards) and `arrivedAt` (when the
 *   reply arrived).
 *
 * The holder is safe if told before the server's grant. That instant is not
 * visible, so: `noticeAt > arrivedAt` (or no notice at all) is a certain
 * overlap; `earliestGrantAt < noticeAt <= arrivedAt` a possible one; and the
 * margin `earliestGrantAt - noticeAt` says how safe (positive: told before
 * even the earliest possible grant).
 */

import { type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { DistributedLock, LockLostError } from "../support/client.ts";
import { seededRng } from "../support/runtime.ts";
import { type FaultProxy, startProxy } from "./proxy.ts";
import { type ContenderMode, type ContenderResult, contend, probeWaiting, type RawConn, sleep } from "./raw.ts";
import { restartServer, type ServerSpec, type Stoppable } from "./servers.ts";

/** `delayed`: server → client chunks held 0..2×lease each; `cutoff`: the proxy goes silent; `kill`: SIGKILL + restart. */
export type Scenario = "delayed" | "cutoff" | "kill";

export const SCENARIOS: readonly Scenario[] = ["delayed", "cutoff", "kill"];

/** The verdict on one trial. */
export type Verdict =
  | "safe" // told of the loss before the earliest possible grant to the contender
  | "possible-overlap" // told between the contender's request and its grant reply
  | "OVERLAP" // told after the contender's grant arrived, or never: two holders at once
  | "held-to-end" // the contender never got the lock; the holder still held or had been told
  | "refused" // the holder's acquire failed with LockLostError: it would not take a grant it could not prove
  | "inconclusive"; // the holder never acquired, or something else went wrong (see `note`)

/** Everything recorded in one trial (times: `performance.now()`, ms). */
export interface TrialRecord {
  readonly scenario: Scenario;
  readonly mode: ContenderMode;
  readonly key: string;
  readonly leaseS: number;
  startedAt: number;
  holderAcquiredAt?: number;
  /** When the proxy saw the holder's grant leave the server. */
  grantLeftServerAt?: number;
  /** The delay the proxy put on that grant (delayed scenario; later replies queue behind it). */
  grantDelayMs?: number;
  /** When the fault was injected (cut off, or SIGKILL). */
  faultAt?: number;
  restartedAt?: number;
  noticeAt?: number;
  noticeHow?: string;
  contenderSentAt?: number;
  earliestGrantAt?: number;
  contenderArrivedAt?: number;
  contender?: ContenderResult | undefined;
  /** When the proxy saw the holder's connection close on the client side (the client hung up). */
  holderHungUpAt?: number;
  endedAt: number;
  holderHeldAtEnd?: boolean;
  verdict: Verdict;
  /** `earliestGrantAt - noticeAt`: positive is safe even against the earliest possible grant. */
  marginMs?: number;
  /** `arrivedAt - noticeAt`: negative is a certain overlap. */
  arrivalMarginMs?: number;
  /** For an OVERLAP: how long both held for certain (from the later of grant arrival and acquire to the notice). */
  overlapMs?: number;
  note?: string;
}

/** How to run a trial. */
export interface TrialOptions {
  readonly scenario: Scenario;
  readonly mode: ContenderMode;
  /** The holder's lease TTL in whole seconds. */
  readonly leaseS: number;
  /** The trial ends this many leases after the holder acquired, contender or not. Default 4. */
  readonly boundLeases?: number;
  /** Random numbers in [0, 1): delays, pauses, when to inject the fault. */
  readonly rng: () => number;
  /** Which server, with which flags (a `kill` trial starts and restarts its own). */
  readonly server: ServerSpec;
  /** The server to use for `delayed` and `cutoff` (shared by trials on other keys). */
  readonly shared?: DflockdServer | undefined;
  /** Makes the key unique. */
  readonly tag: string;
  /**
   * Delayed scenario: the grant's delay as a fraction of 2×lease (0..1), so
   * that a few trials can cover the whole range; later replies stay random.
   */
  readonly grantDelayFraction?: number;
}

const now = (): number => performance.now();

/** Run one trial from a fresh key to a verdict. Bounded: ends by itself. */
export async function runTrial(o: TrialOptions): Promise<TrialRecord> {
  const leaseMs = o.leaseS * 1000;
  const key = `faults-${o.scenario}-${o.mode}-${o.tag}-${Math.floor(o.rng() * 2 ** 32).toString(36)}`;
  // Separate streams, so that a seed gives the same delays however the pauses interleave.
  const delayRng = seededRng(Math.floor(o.rng() * 2 ** 32));
  const faultRng = seededRng(Math.floor(o.rng() * 2 ** 32));
  const pauseRng = seededRng(Math.floor(o.rng() * 2 ** 32));
  const rec: TrialRecord = {
    scenario: o.scenario,
    mode: o.mode,
    key,
    leaseS: o.leaseS,
    startedAt: now(),
    endedAt: 0,
    verdict: "inconclusive",
  };
  // A kill trial has a server of its own; `running` is what this trial must stop.
  const shared = o.scenario === "kill" ? undefined : o.shared;
  const server: DflockdServer = shared ?? (await startDflockd([...o.server.flags], o.server.choice));
  let running: Stoppable | undefined = shared === undefined ? server : undefined;
  const port = server.port;
  const proxy: FaultProxy = await startProxy({ port });
  const stop = { stopped: false };
  const conns: RawConn[] = [];
  let ending = false;
  const note = (how: string): void => {
    if (ending || rec.noticeAt !== undefined) return;
    rec.noticeAt = now();
    rec.noticeHow = how;
  };
  const lock = new DistributedLock({
    key,
    servers: [proxy.address],
    leaseTtlS: o.leaseS,
    acquireTimeoutS: 2 * o.leaseS + 1,
    onLost: (err) => note(`onLost: ${err.message}`),
  });

  let contender: Promise<ContenderResult> | undefined;
  let probe: Promise<number[]> | undefined;
  let boundAt = now() + (4 * o.leaseS + 4) * 1000 + (o.boundLeases ?? 4) * leaseMs;
  const startContender = (): void => {
    if (contender !== undefined) return;
    const common = {
      host: "127.0.0.1",
      port,
      key,
      until: boundAt,
      stop,
      rng: pauseRng,
      onConn: (c: RawConn): void => {
        conns.push(c);
        if (stop.stopped) c.close(); // opened while the trial was ending
      },
    };
    contender = contend({ ...common, mode: o.mode, leaseS: 60 });
    if (o.mode === "queue") probe = probeWaiting(common);
  };

  proxy.observe((e) => {
    if (e.direction === "up" && e.chunk === undefined && e.conn === 1 && !e.byProxy && !proxy.isCut) {
      rec.holderHungUpAt ??= e.at;
    }
  });
  if (o.scenario === "delayed") {
    proxy.setDelay("down", () => {
      const first = rec.grantDelayMs === undefined; // the first reply is the grant
      const d = (first ? (o.grantDelayFraction ?? delayRng()) : delayRng()) * 2 * leaseMs;
      if (first) rec.grantDelayMs = Math.round(d);
      return d;
    });
    proxy.observe((e) => {
      if (e.direction !== "down" || e.chunk === undefined || rec.grantLeftServerAt !== undefined) return;
      rec.grantLeftServerAt = e.at;
      startContender(); // the server has granted the holder: from now on the contender may win
    });
  }

  try {
    // A grant and a confirming renewal may each be held back up to 2×lease.
    const acquired = await withTimeout(lock.acquire(), (4 * o.leaseS + 4) * 1000, () => lock.close());
    if (acquired === true) {
      rec.holderAcquiredAt = now();
      if (lock.signal?.aborted === true) note("lock.signal already aborted when acquire() resolved");
      lock.signal?.addEventListener("abort", () => note("lock.signal aborted"), { once: true });
    } else {
      rec.note = acquired === false ? "the holder's acquire timed out" : "the holder's acquire hung (trial watchdog)";
    }
  } catch (err) {
    if (err instanceof LockLostError) rec.verdict = "refused";
    rec.note = `the holder's acquire failed: ${err instanceof Error ? err.message : String(err)}`;
  }

  if (rec.holderAcquiredAt !== undefined) {
    try {
      boundAt = rec.holderAcquiredAt + (o.boundLeases ?? 4) * leaseMs;
      if (o.scenario === "delayed") {
        startContender();
      } else if (o.scenario === "cutoff") {
        // Cut at a random point of the renewal cycle, sometimes with a renewal in flight.
        await sleep(faultRng() * 1.5 * leaseMs);
        proxy.cut();
        rec.faultAt = now();
        startContender();
      } else {
        startContender(); // queued or polling on the doomed server; it reconnects after the restart
        await sleep(faultRng() * leaseMs);
        rec.faultAt = now();
        running = undefined;
        await server.kill();
        running = await restartServer(o.server, port);
        rec.restartedAt = now();
      }
      // Until the contender holds and the holder has been told, or the bound.
      let c: ContenderResult | undefined;
      void contender?.then((r) => {
        c = r;
      });
      while (now() < boundAt && !(c !== undefined && (c.grant === undefined || rec.noticeAt !== undefined))) {
        await sleep(5);
      }
      rec.holderHeldAtEnd = lock.held;
    } catch (err) {
      rec.note = `the trial failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  ending = true;
  rec.endedAt = now();
  stop.stopped = true;
  lock.close();
  for (const c of conns) c.close();
  rec.contender = await contender;
  const waiting = (await probe) ?? [];
  await proxy.close();
  await running?.stop();
  judge(rec, waiting);
  return rec;
}

/** Fill in the verdict and margins from what was recorded. */
function judge(rec: TrialRecord, waitingProbes: readonly number[]): void {
  if (rec.holderAcquiredAt === undefined) return;
  const grant = rec.contender?.grant;
  if (grant === undefined) {
    const ok = rec.noticeAt !== undefined || rec.holderHeldAtEnd === true;
    rec.verdict = ok ? "held-to-end" : "inconclusive";
    if (!ok) rec.note = "the holder neither holds nor was told of a loss";
    return;
  }
  const stillQueued = waitingProbes.filter((t) => t > grant.sentAt && t < grant.arrivedAt);
  const earliest = Math.max(grant.sentAt, ...stillQueued);
  rec.contenderSentAt = grant.sentAt;
  rec.earliestGrantAt = earliest;
  rec.contenderArrivedAt = grant.arrivedAt;
  const notice = rec.noticeAt;
  if (notice === undefined || notice > grant.arrivedAt) {
    rec.verdict = "OVERLAP";
    rec.overlapMs = (notice ?? rec.endedAt) - Math.max(grant.arrivedAt, rec.holderAcquiredAt);
    if (notice === undefined) rec.note = "the holder was never told of the loss";
  } else {
    rec.verdict = notice > earliest ? "possible-overlap" : "safe";
  }
  if (notice !== undefined) {
    rec.marginMs = earliest - notice;
    rec.arrivalMarginMs = grant.arrivedAt - notice;
  }
}

/** `promise`, or `"hung"` after `ms` (calling `onHang` first). */
async function withTimeout<T>(promise: Promise<T>, ms: number, onHang: () => void): Promise<T | "hung"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<"hung">((resolve) => {
    timer = setTimeout(() => {
      onHang();
      resolve("hung");
    }, ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run `make(i)` for i in 0..n-1, at most `concurrency` at a time; results in order. */
export async function runTrials(
  n: number,
  concurrency: number,
  make: (i: number) => Promise<TrialRecord>,
): Promise<TrialRecord[]> {
  const out: TrialRecord[] = new Array(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < n; i = next++) out[i] = await make(i);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker));
  return out;
}

export { seededRng };
