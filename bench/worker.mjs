// One case of `npm run bench`, in whichever runtime runs this file (Node, Bun
// or Deno); bench/run.ts starts one such process per runtime and case.
//
//   node --expose-gc bench/worker.mjs <module> <case> <host> <port> [<options JSON>]
//   bun bench/worker.mjs ...          deno run -A --v8-flags=--expose-gc bench/worker.mjs ...
//
// <module> is the package build for the runtime (dist/node.js, dist/bun.js,
// or mod.ts for Deno). Cases:
//   raw          the floor: 50 workers, each on its own raw connection and key, `l` then `r` (bench/raw.mjs)
//   lowlevel     50 workers, one connect() each, then acquire()/release() in a loop
//   dl           50 workers, one DistributedLock each, reused: acquire(); release()
//   dl-withlock  the same with withLock(async () => {})
//   dl-new       a new DistributedLock for every operation
//   latency      loopback RTT of a raw one-line request, and the contended hand-off A -> B (raw and
//                DistributedLock): bench/latency.mjs
//   heap         heap and RSS per held DistributedLock (options.locks of them held at once)
// Throughput cases run every worker without pause: a warm-up, then
// `repeats` windows of `seconds`; each window gives ops/s (one op = acquire +
// release) and CPU microseconds per op (process.cpuUsage(), which Node, Bun
// and Deno all provide, user + system); the median window is reported.
//
// Prints one JSON line last: {"ok":true,"result":{...}} or {"ok":false,"error":"..."}.
// A failure inside a case is reported in its result (errors, failed workers),
// not thrown, so that one broken case never hides the others.
import process from "node:process";
import { pathToFileURL } from "node:url";
import { latency, message, percentile, sleep } from "./latency.mjs";
import { openRaw, RUNTIME, rawAcquireRelease } from "./raw.mjs";

const [modulePath, which, host, portText, optionsText] = process.argv.slice(2);
const port = Number(portText);
// Defaults; bench/run.ts passes its own.
const defaults = { workers: 50, warmupS: 0.5, seconds: 2, repeats: 3, rttReps: 2000, handoffReps: 500, locks: 10_000 };
const o = { ...defaults, batch: 200, ...JSON.parse(optionsText ?? "{}") };
const servers = [[host, port]];

const median = (xs) => percentile(xs, 0.5);
const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Errors of a case's workers: how many, and the first few distinct messages. */
class Errors {
  count = 0;
  messages = [];
  add(e) {
    this.count++;
    const m = message(e);
    if (this.messages.length < 3 && !this.messages.includes(m)) this.messages.push(m);
  }
  toJSON() {
    return this.count === 0 ? undefined : { count: this.count, messages: this.messages };
  }
}

// Rejections nobody awaited (say, from a client library being edited) are
// counted, not allowed to end the process.
const stray = new Errors();
process.on?.("unhandledRejection", (e) => stray.add(e));
globalThis.addEventListener?.("unhandledrejection", (ev) => {
  ev.preventDefault();
  stray.add(ev.reason);
});

/**
 * Run `o.workers` workers, each `setup(i)` once and then `op(state, i)` until
 * stopped; sample ops and CPU over `o.repeats` windows after the warm-up. A
 * worker whose op throws records the error and stops.
 */
async function throughput({ setup, op, teardown }) {
  let running = true;
  let ops = 0;
  const errors = new Errors();
  let failed = 0;
  const workers = Array.from({ length: o.workers }, async (_, i) => {
    let state;
    try {
      state = await setup(i);
      while (running) {
        await op(state, i);
        ops++;
      }
    } catch (e) {
      errors.add(e);
      failed++;
    } finally {
      try {
        await teardown?.(state);
      } catch {
        // Closing a broken connection may fail too.
      }
    }
  });
  const allDone = Promise.all(workers);
  const wait = (ms) => Promise.race([sleep(ms), allDone]);
  await wait(o.warmupS * 1000);
  const windows = [];
  for (let r = 0; r < o.repeats && failed < o.workers; r++) {
    const n0 = ops;
    const c0 = cpuMicros();
    const t0 = performance.now();
    await wait(o.seconds * 1000);
    const n = ops - n0;
    const cpu = cpuMicros() - c0;
    const s = (performance.now() - t0) / 1000;
    if (n > 0) windows.push({ opsPerS: n / s, cpuUsPerOp: cpu / n });
  }
  running = false;
  await Promise.race([allDone, sleep(10_000)]);
  return {
    opsPerS: median(windows.map((w) => w.opsPerS)),
    cpuUsPerOp: median(windows.map((w) => w.cpuUsPerOp)),
    windows,
    workers: o.workers,
    failedWorkers: failed,
    errors: errors.toJSON(),
  };
}

const keyOf = (i) => `bench-w${i}`;

/** The package under test (loaded only by the cases that use it). */
async function load() {
  return import(pathToFileURL(modulePath).href);
}

async function acquireOrThrow(lock) {
  if (!(await lock.acquire())) throw new Error(`${lock.key}: acquire() timed out`);
}

const CASES = {
  raw: () =>
    throughput({
      setup: () => openRaw(host, port),
      op: (conn, i) => rawAcquireRelease(conn, keyOf(i)),
      teardown: (conn) => conn?.close(),
    }),

  async lowlevel() {
    const c = await load();
    return throughput({
      setup: () => c.connect({ host, port }),
      op: async (conn, i) => {
        const g = await c.acquire(conn, keyOf(i), 10);
        await c.release(conn, keyOf(i), g.token);
      },
      teardown: (conn) => conn?.close(),
    });
  },

  async dl() {
    const c = await load();
    return throughput({
      setup: (i) => new c.DistributedLock({ key: keyOf(i), servers }),
      op: async (lock) => {
        await acquireOrThrow(lock);
        await lock.release();
      },
      teardown: (lock) => lock?.close(),
    });
  },

  async "dl-withlock"() {
    const c = await load();
    return throughput({
      setup: (i) => new c.DistributedLock({ key: keyOf(i), servers }),
      op: (lock) => lock.withLock(async () => {}),
      teardown: (lock) => lock?.close(),
    });
  },

  async "dl-new"() {
    const c = await load();
    return throughput({
      setup: () => undefined,
      op: async (_, i) => {
        const lock = new c.DistributedLock({ key: keyOf(i), servers });
        try {
          await acquireOrThrow(lock);
          await lock.release();
        } finally {
          lock.close();
        }
      },
    });
  },

  async latency() {
    let pkg;
    try {
      pkg = await load();
    } catch (e) {
      pkg = { loadError: message(e) };
    }
    return latency({ host, port, o, DistributedLock: pkg.DistributedLock, loadError: pkg.loadError, acquireOrThrow });
  },

  heap,
};

/** Full GC, twice (the second catches what finalizers of the first let go). */
function fullGc() {
  for (let i = 0; i < 2; i++) {
    if (globalThis.Bun !== undefined) Bun.gc(true);
    else if (typeof globalThis.gc === "function") globalThis.gc();
    else return false;
  }
  return true;
}

/**
 * Heap and RSS per held lock: baseline after one warm-up cycle and a full GC;
 * then `o.locks` DistributedLocks with distinct keys, acquired `o.batch` at a
 * time and all held at once; full GC; deltas divided by the number held.
 * Then everything is released.
 */
async function heap() {
  const c = await load();
  const warm = new c.DistributedLock({ key: "bench-h-warm", servers });
  await acquireOrThrow(warm);
  await warm.release();
  warm.close();
  await sleep(50);
  const gcOk = fullGc();
  const before = process.memoryUsage();
  const locks = [];
  const errors = new Errors();
  const t0 = performance.now();
  for (let i = 0; i < o.locks; i += o.batch) {
    const batch = [];
    for (let j = i; j < Math.min(o.locks, i + o.batch); j++)
      batch.push(new c.DistributedLock({ key: `bench-h${j}`, servers }));
    const got = await Promise.allSettled(batch.map((l) => acquireOrThrow(l)));
    got.forEach((g, j) => {
      if (g.status === "fulfilled") locks.push(batch[j]);
      else {
        errors.add(g.reason);
        batch[j].close();
      }
    });
  }
  const acquireS = (performance.now() - t0) / 1000;
  await sleep(50);
  fullGc();
  const after = process.memoryUsage();
  const held = locks.filter((l) => l.held).length;
  const per = (a, b) => (held === 0 ? Number.NaN : (b - a) / held / 1024);
  const result = {
    asked: o.locks,
    held,
    acquireS,
    gc: gcOk,
    heapKiBPerLock: per(before.heapUsed, after.heapUsed),
    rssKiBPerLock: per(before.rss, after.rss),
    baseline: { heapUsed: before.heapUsed, rss: before.rss },
    errors: errors.toJSON(),
  };
  const releaseErrors = new Errors();
  for (let i = 0; i < locks.length; i += o.batch) {
    const got = await Promise.allSettled(locks.slice(i, i + o.batch).map((l) => l.release()));
    for (const g of got) if (g.status === "rejected") releaseErrors.add(g.reason);
  }
  for (const l of locks) l.close();
  result.releaseErrors = releaseErrors.toJSON();
  return result;
}

async function main() {
  const run = CASES[which];
  if (run === undefined) throw new Error(`unknown case ${which}; expected one of ${Object.keys(CASES).join(", ")}`);
  const result = await run();
  result.strayRejections = stray.toJSON();
  return result;
}

const version =
  RUNTIME === "deno" ? Deno.version.deno : RUNTIME === "bun" ? Bun.version : process.version.replace(/^v/, "");
let line;
try {
  line = JSON.stringify({ ok: true, runtime: RUNTIME, version, result: await main() });
} catch (e) {
  line = JSON.stringify({ ok: false, runtime: RUNTIME, version, error: message(e) });
}
process.stdout.write(`${line}\n`, () => process.exit(0));
