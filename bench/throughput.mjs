// The closed-loop throughput cases of `npm run bench` (run by bench/worker.mjs
// as the case "interleaved"). One process runs several cases side by side:
// each case has `o.workers` workers (50 by default; bench/run.ts's scaling
// rounds pass 1, 10, 50, 200 and 1,000), each looping one operation (acquire
// + release of its own key) without pause, but only one case runs at a time.
// Cases:
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
//
// Why interleaved: on a small machine the rate a case reaches moves by 20 to
// 30 % from one second to the next and from one process to the next (where
// the scheduler puts the client and the server), far more than the
// differences measured. Cases measured in windows seconds apart, in processes
// of their own, gave ratios anywhere from 0.7 to 1.5 for the same code. Here
// the floor and the case under test take turns in short slices (`o.sliceS`,
// 0.1 s by default), in one process, `o.slices` times each, the order rotated
// every turn; a ratio (bench/ratios.ts) sums slices from the same turns, so
// whatever the machine does to one side it does, within a tenth of a second,
// to the other.
//
// A slice starts only once every operation of the case before it has
// finished, so no two cases overlap in a slice; each case's workers wait at a
// gate of their own while another case runs. Before the slices, each case is
// warmed up in turn for at least `o.warmupS` and `o.warmupOps` operations (the
// just-in-time compilers need work, not time: one worker does in 0.3 s a
// tenth of what fifty do). A slice gives ops/s (one op = acquire + release)
// and the process's CPU microseconds per op (process.cpuUsage(), user +
// system). A worker whose op throws records the error and stops.
import { acquireOrThrow, cpuMicros, Errors, median, sleep } from "./common.mjs";
import { openRaw, rawAcquireRelease } from "./raw.mjs";

/**
 * The cases, by name: each `(ctx) => { setup(key), op(state, key), teardown?(state), close?() }`,
 * ctx = { host, port, servers, load }. `setup` runs once per worker before any clock starts.
 */
const CASES = {
  raw: ({ host, port }) => ({
    setup: () => openRaw(host, port),
    op: (conn, key) => rawAcquireRelease(conn, key),
    teardown: (conn) => conn.close(),
  }),

  "raw-onread": ({ host, port }) => ({
    setup: () => openRaw(host, port, true),
    op: (conn, key) => rawAcquireRelease(conn, key),
    teardown: (conn) => conn.close(),
  }),

  async lowlevel({ host, port, load }) {
    const c = await load();
    return {
      setup: () => c.connect({ host, port }),
      op: async (conn, key) => {
        const g = await c.acquire(conn, key, 10);
        await c.release(conn, key, g.token);
      },
      teardown: (conn) => conn.close(),
    };
  },

  async dl({ servers, load }) {
    const c = await load();
    return {
      setup: (key) => new c.DistributedLock({ key, servers }),
      op: async (lock) => {
        await acquireOrThrow(lock);
        await lock.release();
      },
      teardown: (lock) => lock.close(),
    };
  },

  async "dl-withlock"({ servers, load }) {
    const c = await load();
    return {
      setup: (key) => new c.DistributedLock({ key, servers }),
      op: (lock) => lock.withLock(async () => {}),
      teardown: (lock) => lock.close(),
    };
  },

  async "dl-new"({ servers, load }) {
    const c = await load();
    return {
      setup: () => undefined,
      op: async (_, key) => {
        const lock = new c.DistributedLock({ key, servers });
        try {
          await acquireOrThrow(lock);
          await lock.release();
        } finally {
          lock.close();
        }
      },
    };
  },

  async client({ servers, load }) {
    const c = await load();
    const client = new c.DflockdClient({ servers });
    return {
      setup: (key) => client.lock(key),
      op: async (lock) => {
        await acquireOrThrow(lock);
        await lock.release();
      },
      close: () => client.close(),
    };
  },

  async "client-withlock"({ servers, load }) {
    const c = await load();
    const client = new c.DflockdClient({ servers });
    return {
      setup: () => undefined,
      op: (_, key) => client.lock(key).withLock(async () => {}),
      close: () => client.close(),
    };
  },
};

/** The names of the closed-loop cases. */
export const THROUGHPUT_CASE_NAMES = Object.keys(CASES);

/** A gate the workers of a case wait at while another case runs. */
function closedGate() {
  let open;
  const promise = new Promise((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Most a slice waits for the case before it to finish its operations (a blocked acquire waits 10 s). */
const DRAIN_MS = 5000;

/** One case's workers in an interleaved run: counts, its gate, and the wait for its operations to end. */
class Lane {
  ops = 0;
  inflight = 0;
  ready = 0;
  failed = 0;
  errors = new Errors();
  windows = [];
  gate = closedGate();
  #drained;

  constructor(name, index, def) {
    this.name = name;
    this.index = index;
    this.def = def;
  }

  /** An operation ended: wake a wait for the lane to go quiet. */
  ended() {
    if (--this.inflight === 0 && this.#drained !== undefined) {
      const done = this.#drained;
      this.#drained = undefined;
      done();
    }
  }

  /** Resolves once no operation of this lane is in flight, or after DRAIN_MS; true if it went quiet. */
  async quiet() {
    if (this.inflight === 0) return true;
    const done = new Promise((resolve) => {
      this.#drained = resolve;
    });
    return Promise.race([done.then(() => true), sleep(DRAIN_MS).then(() => false)]);
  }
}

/**
 * Run the cases `names` with `o.workers` workers each, taking turns (see the
 * header); ctx = { o, host, port, servers, load }. Resolves with
 * `{ cases: { [name]: Throughput } }`, each window a slice tagged with its turn.
 */
export async function interleaved(ctx, names) {
  const { o } = ctx;
  for (const n of names) if (CASES[n] === undefined) throw new Error(`unknown throughput case ${n}`);
  const lanes = [];
  for (const [i, n] of names.entries()) lanes.push(new Lane(n, i, await CASES[n](ctx)));
  let active;
  let running = true;
  let overlaps = 0;
  const work = [];
  for (const lane of lanes) {
    // Keys of one length in every lane: the server's cost per key does not depend on the lane.
    const keys = Array.from({ length: o.workers }, (_, i) => `bench-${lane.index}-w${i}`);
    const started = performance.now();
    for (const key of keys) work.push(worker(lane, key));
    // Every setup done (or failed), at most 30 s: 1,000 connects take a while on a busy machine.
    while (lane.ready + lane.failed < o.workers && performance.now() - started < 30_000) await sleep(5);
    lane.setupS = (performance.now() - started) / 1000;
  }

  async function worker(lane, key) {
    let state;
    try {
      state = await lane.def.setup(key);
      lane.ready++;
      while (running) {
        if (active !== lane) {
          await lane.gate.promise;
          continue;
        }
        lane.inflight++;
        try {
          await lane.def.op(state, key);
        } finally {
          lane.ended();
        }
        lane.ops++;
      }
    } catch (e) {
      lane.errors.add(e);
      lane.failed++;
    } finally {
      try {
        if (state !== undefined) await lane.def.teardown?.(state);
      } catch {
        // Closing a broken connection may fail too.
      }
    }
  }

  /** Let `lane` run, and wait until the lane before it has no operation left. */
  async function turnTo(lane) {
    const before = active;
    if (before === lane) return;
    if (before !== undefined) before.gate = closedGate();
    active = lane;
    lane.gate.open();
    if (before !== undefined && !(await before.quiet())) overlaps++;
  }

  const live = (lane) => lane.failed < o.workers;
  for (const lane of lanes) {
    if (!live(lane)) continue;
    await turnTo(lane);
    const t0 = performance.now();
    const n0 = lane.ops;
    const enough = () => performance.now() - t0 >= o.warmupS * 1000 && lane.ops - n0 >= o.warmupOps;
    while (!enough() && live(lane) && performance.now() - t0 < 10_000) await sleep(20);
  }
  for (let s = 0; s < o.slices; s++) {
    for (let k = 0; k < lanes.length; k++) {
      const lane = lanes[(k + s) % lanes.length];
      if (!live(lane)) continue;
      await turnTo(lane);
      const n0 = lane.ops;
      const c0 = cpuMicros();
      const t0 = performance.now();
      await sleep(o.sliceS * 1000);
      const n = lane.ops - n0;
      const cpu = cpuMicros() - c0;
      const seconds = (performance.now() - t0) / 1000;
      if (n > 0) lane.windows.push({ opsPerS: n / seconds, cpuUsPerOp: cpu / n, slice: s });
    }
  }
  running = false;
  active = undefined;
  for (const lane of lanes) lane.gate.open();
  await Promise.race([Promise.all(work), sleep(10_000)]);
  for (const lane of lanes) await lane.def.close?.();
  const cases = {};
  for (const lane of lanes) {
    cases[lane.name] = {
      opsPerS: median(lane.windows.map((w) => w.opsPerS)),
      cpuUsPerOp: median(lane.windows.map((w) => w.cpuUsPerOp)),
      windows: lane.windows,
      workers: o.workers,
      setupS: lane.setupS,
      failedWorkers: lane.failed,
      errors: lane.errors.toJSON(),
    };
  }
  return { cases, overlaps };
}
