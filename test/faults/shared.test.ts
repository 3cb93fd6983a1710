/**
 * Invariant I1, on a connection shared by many holdings: every holding on a
 * connection is told (state `lost`, signal aborted, `onLost` and
 * `hooks.lost` called) before the client closes, abandons or reuses that
 * connection. The server frees every lock of a closed connection at once and
 * grants them to waiters in other processes, so a holding told after the
 * close can be told after someone else holds its lock.
 *
 * Each trial (shared-trial.ts): a holder process of the runtime under test
 * with ~60 holdings on one connection, a queued waiter per key in this
 * process, the server's replies on that connection held back until the
 * client gives it up. Fails on any key told after its waiter's grant arrived,
 * or after the client hung up, or not told in all three ways.
 *
 * `SHARED_TRIALS=<n>` runs n trials (default 3), for long runs against a
 * real server:
 *
 * ```sh
 * SHARED_TRIALS=100 DFLOCKD_SERVER=real DFLOCKD_BIN=/path/to/dflockd npx vitest run --project faults test/faults/shared.test.ts
 * ```
 */
import { afterAll, beforeAll, expect, test } from "vitest";
import { DEFAULT_SHARE_AFTER } from "../../src/pool.ts";
import { type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { RUNTIME } from "../support/runtime.ts";
import { runServer, serverLabel } from "./servers.ts";
import { describeShared, formatShared, summarizeShared } from "./shared-summary.ts";
import { runSharedTrial, type SharedRecord } from "./shared-trial.ts";

const LEASE_S = 2;
/** Holdings on the shared connection: the first DEFAULT_SHARE_AFTER locks get a connection each. */
const SHARED = 60;
const LOCKS = DEFAULT_SHARE_AFTER - 1 + SHARED;
const TRIALS = Math.max(1, Math.floor(Number(process.env.SHARED_TRIALS ?? 3)) || 3);
const spec = runServer();

let server: DflockdServer | undefined;
beforeAll(async () => {
  // Every trial's keys stay on the server until its garbage collection: room for all of them.
  const maxLocks = String(Math.max(1024, 2 * LOCKS * TRIALS));
  server = await startDflockd([...spec.flags, "--max-locks", maxLocks], spec.choice);
});
afterAll(async () => {
  await server?.stop();
});

test(
  `shared connection (${SHARED} holdings): each is told before its waiter is granted`,
  async () => {
    const label = `[${RUNTIME}, ${serverLabel(spec)}] shared`;
    console.log(`${label}: ${TRIALS} trials, lease ${LEASE_S} s, ${SHARED} holdings on one connection`);
    const records: SharedRecord[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const r = await runSharedTrial({
        server: server as DflockdServer,
        leaseS: LEASE_S,
        locks: LOCKS,
        tag: `${RUNTIME}-${i}`,
      });
      records.push(r);
      const s = summarizeShared([r]);
      if (TRIALS <= 10 || s.failedTrials + s.broken > 0) console.log(describeShared(r));
      else if ((i + 1) % 10 === 0) console.log(`${label}: ${i + 1}/${TRIALS} trials`);
    }
    const s = summarizeShared(records);
    console.log(formatShared(label, s));

    expect(records.filter((r) => r.note !== undefined).map((r) => `${r.tag}: ${r.note}`)).toEqual([]);
    expect(records.map((r) => r.sharedKeys)).toEqual(records.map(() => SHARED));
    expect(records.flatMap((r) => r.badState)).toEqual([]);
    expect({ neverGranted: s.ungranted, neverTold: s.untold }).toEqual({ neverGranted: 0, neverTold: 0 });
    expect({ toldLate: s.late, notFullyTold: s.notFullyTold, toldAfterHangUp: s.afterHangUp }).toEqual({
      toldLate: 0,
      notFullyTold: 0,
      toldAfterHangUp: 0,
    });
  },
  TRIALS * 20_000 + 30_000,
);
