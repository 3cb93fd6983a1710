// The closed-loop throughput cases of `npm run bench` (run by bench/worker.mjs):
// `o.workers` workers (50 by default; bench/run.ts's scaling rounds pass 1,
// 10, 50, 200 and 1,000), each looping one operation (acquire + release of
// its own key) without pause. Cases:
//   raw              the floor: each worker on its own raw connection (bench/raw.mjs), `l` then `r`
//   raw-onread       Node only: the same, reading with net.connect's `onread` option
//   lowlevel         one connect() per worker, then acquire()/release() in a loop
//   dl               one DistributedLock per worker, reused: acquire(); release()
//   dl-withlock      the same with withLock(async () => {})
//   dl-new           a new DistributedLock for every operation (acquire, release, close)
//   client           one DflockdClient for the process; each worker's client.lock(key), reused:
//                    acquire(); release()
//   client-withlock  client.lock(key).withLock(async () => {}) for every operation, the way the
//                    README writes it
// Every worker's setup (a raw connect, say) finishes before the clock starts;
// then a warm-up of `o.warmupS`, then `o.repeats` windows of `o.seconds`: each
// gives ops/s (one op = acquire + release) and CPU microseconds per op
// (process.cpuUsage(), user + system); the median window is reported.
// A worker whose op throws records the error and stops.
import { acquireOrThrow, cpuMicros, Errors, median, sleep } from "./common.mjs";
import { openRaw, rawAcquireRelease } from "./raw.mjs";

const keyOf = (i) => `bench-w${i}`;

/**
 * Run `o.workers` workers, each `setup(i)` once and then `op(state, i)` until
 * stopped; sample ops and CPU over `o.repeats` windows after the warm-up.
 */
async function throughput(o, { setup, op, teardown }) {
  let running = true;
  let ops = 0;
  let ready = 0;
  const errors = new Errors();
  let failed = 0;
  let go;
  const started = new Promise((resolve) => {
    go = resolve;
  });
  const workers = Array.from({ length: o.workers }, async (_, i) => {
    let state;
    try {
      state = await setup(i);
      ready++;
      await started;
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
  // Every setup done (or failed), at most 30 s: 1,000 connects take a while on a busy machine.
  const setupEnd = performance.now() + 30_000;
  while (ready + failed < o.workers && performance.now() < setupEnd) await sleep(5);
  const setupS = (performance.now() - (setupEnd - 30_000)) / 1000;
  go();
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
    setupS,
    failedWorkers: failed,
    errors: errors.toJSON(),
  };
}

/** The closed-loop cases, by name: each `(ctx) => Promise<result>`, ctx = { o, host, port, servers, load }. */
export const THROUGHPUT_CASES = {
  raw: ({ o, host, port }) =>
    throughput(o, {
      setup: () => openRaw(host, port),
      op: (conn, i) => rawAcquireRelease(conn, keyOf(i)),
      teardown: (conn) => conn?.close(),
    }),

  "raw-onread": ({ o, host, port }) =>
    throughput(o, {
      setup: () => openRaw(host, port, true),
      op: (conn, i) => rawAcquireRelease(conn, keyOf(i)),
      teardown: (conn) => conn?.close(),
    }),

  async lowlevel({ o, host, port, load }) {
    const c = await load();
    return throughput(o, {
      setup: () => c.connect({ host, port }),
      op: async (conn, i) => {
        const g = await c.acquire(conn, keyOf(i), 10);
        await c.release(conn, keyOf(i), g.token);
      },
      teardown: (conn) => conn?.close(),
    });
  },

  async dl({ o, servers, load }) {
    const c = await load();
    return throughput(o, {
      setup: (i) => new c.DistributedLock({ key: keyOf(i), servers }),
      op: async (lock) => {
        await acquireOrThrow(lock);
        await lock.release();
      },
      teardown: (lock) => lock?.close(),
    });
  },

  async "dl-withlock"({ o, servers, load }) {
    const c = await load();
    return throughput(o, {
      setup: (i) => new c.DistributedLock({ key: keyOf(i), servers }),
      op: (lock) => lock.withLock(async () => {}),
      teardown: (lock) => lock?.close(),
    });
  },

  async "dl-new"({ o, servers, load }) {
    const c = await load();
    return throughput(o, {
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

  async client({ o, servers, load }) {
    const c = await load();
    const client = new c.DflockdClient({ servers });
    try {
      return await throughput(o, {
        setup: (i) => client.lock(keyOf(i)),
        op: async (lock) => {
          await acquireOrThrow(lock);
          await lock.release();
        },
      });
    } finally {
      client.close();
    }
  },

  async "client-withlock"({ o, servers, load }) {
    const c = await load();
    const client = new c.DflockdClient({ servers });
    try {
      return await throughput(o, {
        setup: () => undefined,
        op: (_, i) => client.lock(keyOf(i)).withLock(async () => {}),
      });
    } finally {
      client.close();
    }
  },
};
