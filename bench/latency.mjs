// The latency case of `npm run bench` (run by bench/worker.mjs): the loopback
// round trip of a one-line request, and the contended hand-off of a lock from
// one holder to a waiter, on raw sockets (the floor) and with DistributedLock.
//
// Hand-off: A holds the key, B is queued in acquire (confirmed with `stats`);
// the time runs from A's release being sent/called to B's acquire resolving.
// Roles alternate. The ratio that matters is hand-off p50 / RTT p50, with the
// RTT sampled just before each hand-off (`rtt` inside each hand-off result);
// the back-to-back RTT (`rtt` of the case) is reported beside it.
import { message, percentile, sleep } from "./common.mjs";
import { openRaw, rawAcquire, rawRelease } from "./raw.mjs";

/** Set by {@link latency}: `{ host, port, o, DistributedLock, loadError, acquireOrThrow }`. */
let ctx;

/**
 * Run the case. The back-to-back RTT is sampled half before and half after
 * the hand-offs and pooled, so it sees the same conditions (say, other load on
 * the machine). Each part that fails reports its error in its own slot.
 */
export async function latency(context) {
  ctx = context;
  const out = {};
  const ms = [];
  await part(out, "rtt", () => rtt(ms, Math.ceil(ctx.o.rttReps / 2)));
  await part(out, "handoffRaw", handoffRaw);
  await part(out, "handoffDl", handoffDl);
  await part(out, "rtt", () => rtt(ms, Math.floor(ctx.o.rttReps / 2)));
  return out;
}

/** Run one part of a case; its error goes in its own slot. */
async function part(out, name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: message(e) };
  }
}

const summary = (xs) => ({ n: xs.length, p50Us: percentile(xs, 0.5) * 1000, p90Us: percentile(xs, 0.9) * 1000 });

/** `r` of a key nobody holds, with a bogus token: answered with `error` at once by every version. */
const NOKEY = "r\nbench-nokey\nnotoken\n";

/**
 * Loopback round trip of the cheapest one-line exchange ({@link NOKEY}), back
 * to back. Adds `reps` samples (ms) to `ms`, after 200 unrecorded; returns the
 * summary of all of `ms`.
 */
async function rtt(ms, reps) {
  const conn = await openRaw(ctx.host, ctx.port);
  try {
    for (let i = 0; i < 200; i++) await conn.request(NOKEY);
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await conn.request(NOKEY);
      ms.push(performance.now() - t0);
    }
    return summary(ms);
  } finally {
    conn.close();
  }
}

/**
 * Resolves once the server shows a waiter queued on `key` (polled with `stats`
 * on a connection of its own), so that the release starts a real hand-off.
 * Gives up after 2 s and says so (counted as `unconfirmed`).
 */
async function queuedOn(statsConn, key) {
  const deadline = performance.now() + 2000;
  while (performance.now() < deadline) {
    const line = await statsConn.request("stats\n_\n\n");
    if (line.startsWith("ok ")) {
      const locks = JSON.parse(line.slice(3)).locks ?? [];
      if (locks.some((l) => l.key === key && l.waiters > 0)) return true;
    }
    await sleep(1);
  }
  return false;
}

/**
 * Contended hand-off, `ctx.o.handoffReps` times after a warm-up and 20 unrecorded: the holder
 * releases while the other side is queued in acquire; time from the release
 * being sent/called to the waiter's acquire resolving. Roles alternate.
 * `openSide()` gives a side; `acquire(side)` starts its acquire,
 * `release(side)` its release (both return promises).
 * Just before each release, one RTT sample is taken on the `stats`
 * connection (`rtt` in the result): the round trip under the same conditions
 * as the hand-off that follows (a back-to-back loop keeps every thread hot;
 * a hand-off comes after a pause).
 */
async function handoff(key, openSide, acquire, release, closeSide) {
  const statsConn = await openRaw(ctx.host, ctx.port);
  const sides = [await openSide(), await openSide()];
  const ms = [];
  const rttMs = [];
  let unconfirmed = 0;
  try {
    await acquire(sides[0]);
    // Warm-up, unrecorded and unconfirmed: the same hand-offs back to back, so
    // that the client's code is as warm (JIT-compiled) as the raw loop's,
    // which the RTT phase has already run thousands of times.
    const warm = ctx.o.handoffWarm ?? 2000;
    for (let r = 0; r < warm; r++) {
      const [holder, waiter] = r % 2 === 0 ? sides : [sides[1], sides[0]];
      const granted = acquire(waiter);
      await release(holder);
      await granted;
    }
    const first = warm % 2;
    for (let r = 0; r < ctx.o.handoffReps + 20; r++) {
      const [holder, waiter] = (r + first) % 2 === 0 ? sides : [sides[1], sides[0]];
      const granted = acquire(waiter);
      granted.catch(() => {});
      if (!(await queuedOn(statsConn, key))) unconfirmed++;
      // The same pause before every hand-off, whoever was quicker to queue.
      await sleep(1);
      const r0 = performance.now();
      await statsConn.request(NOKEY);
      if (r >= 20) rttMs.push(performance.now() - r0);
      const t0 = performance.now();
      const released = release(holder);
      await granted;
      const dt = performance.now() - t0;
      await released;
      if (r >= 20) ms.push(dt);
    }
    await release((ctx.o.handoffReps + 20 + first) % 2 === 0 ? sides[0] : sides[1]);
    return { ...summary(ms), unconfirmed, rtt: summary(rttMs) };
  } finally {
    statsConn.close();
    for (const s of sides) closeSide(s);
  }
}

function handoffRaw() {
  const key = "bench-handoff-raw";
  return handoff(
    key,
    async () => ({ conn: await openRaw(ctx.host, ctx.port), token: undefined }),
    async (side) => {
      side.token = await rawAcquire(side.conn, key);
    },
    (side) => rawRelease(side.conn, key, side.token),
    (side) => side.conn.close(),
  );
}

function handoffDl() {
  if (typeof ctx.DistributedLock !== "function") throw new Error(ctx.loadError ?? "the package has no DistributedLock");
  const key = "bench-handoff-dl";
  return handoff(
    key,
    async () => new ctx.DistributedLock({ key, servers: [[ctx.host, ctx.port]] }),
    (lock) => ctx.acquireOrThrow(lock),
    (lock) => lock.release(),
    (lock) => lock.close(),
  );
}
