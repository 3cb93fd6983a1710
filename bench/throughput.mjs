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
// the floor(s) and the case under test take turns in short slices
// (`o.sliceS`, 0.1 s by default), in one process, `o.slices` each. The turns
// follow a cycle in which every case follows every other one equally often
// (`cycle()`): what a case leaves behind (garbage to collect, a server still
// catching up) lands on each of the others alike. A ratio (bench/ratios.ts)
// sums the slices of the same cycles, so whatever the machine does to one
// side it does, within a few tenths of a second, to the other.
//
// When a case's turn begins, the workers of the others stop starting
// operations; its slice is measured from when none of theirs is left in
// flight (at most DRAIN_MS, else the slice is marked `overlap` and left out
// of the ratios). Before the slices, each case is warmed up in turn for at
// least `o.warmupS` and `o.warmupOps` operations (the just-in-time compilers
// need work, not time: one worker does in 0.5 s a tenth of what fifty do). A
// slice records its operations (one op = acquire + release), its length, and
// the process's CPU time (process.cpuUsage(), user + system, every thread). A
// worker whose op throws records the error and stops.
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

/** A gate the workers of a case wait at while another case runs. */
function closedGate() {
  let open;
  const promise = new Promise((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Most a slice waits for the other cases to finish their operations (a blocked acquire waits 10 s). */
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

  /**
   * Resolves once no operation of this lane is in flight, or after `ms`; true if it went quiet. One wait at a
   * time (turnTo() waits for the lanes one after another).
   */
  async quiet(ms) {
    if (this.inflight === 0) return true;
    if (this.#drained !== undefined) throw new Error("Lane.quiet(): a wait is already in progress");
    let timer;
    const done = new Promise((resolve) => {
      this.#drained = () => resolve(true);
      timer = setTimeout(() => resolve(false), ms);
    });
    const quiet = await done;
    clearTimeout(timer);
    this.#drained = undefined;
    return quiet;
  }
}

/**
 * The order of turns for `n` cases (n prime, as 2 and 3 are): for each step d
 * from 1 to n - 1, the cases 0, d, 2d, ... (mod n). Every case follows every
 * other exactly once per cycle, the wrap from one cycle to the next included;
 * each case takes n - 1 turns per cycle. Two cases: 0 1; three: 0 1 2 0 2 1.
 */
function cycle(n) {
  const order = [];
  for (let d = 1; d < n; d++) for (let i = 0; i < n; i++) order.push((i * d) % n);
  return n === 1 ? [0] : order;
}

/**
 * Run the cases `names` with `o.workers` workers each, taking turns (see the
 * header); ctx = { o, host, port, servers, load }. Resolves with
 * `{ cases: { [name]: Throughput } }`, each window a slice tagged with its turn.
 */
export async function interleaved(ctx, names) {
  const { o } = ctx;
  for (const n of names) if (CASES[n] === undefined) throw new Error(`unknown throughput case ${n}`);
  // cycle() balances the turns of 1, 2 or 3 cases (a prime number of them); more would get unequal turns.
  if (names.length < 1 || names.length > 3) throw new Error(`interleaved: 1 to 3 cases, got ${names.length}`);
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

  /** Let `lane` run, and wait until no other lane has an operation left; false if one still had after DRAIN_MS. */
  async function turnTo(lane) {
    const before = active;
    if (before === lane) return true;
    if (before !== undefined) before.gate = closedGate();
    active = lane;
    lane.gate.open();
    const until = performance.now() + DRAIN_MS;
    let quiet = true;
    for (const other of lanes)
      if (other !== lane) quiet = (await other.quiet(Math.max(0, until - performance.now()))) && quiet;
    return quiet;
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
  const order = cycle(lanes.length);
  const cycles = Math.ceil(o.slices / Math.max(1, lanes.length - 1));
  for (let c = 0; c < cycles; c++) {
    for (const i of order) {
      const lane = lanes[i];
      if (!live(lane)) continue;
      const overlap = !(await turnTo(lane));
      if (overlap) overlaps++;
      const n0 = lane.ops;
      const c0 = cpuMicros();
      const t0 = performance.now();
      await sleep(o.sliceS * 1000);
      const ops = lane.ops - n0;
      const cpuUs = cpuMicros() - c0;
      const seconds = (performance.now() - t0) / 1000;
      const w = { ops, seconds, cpuUs, opsPerS: ops / seconds, cpuUsPerOp: ops > 0 ? cpuUs / ops : null, slice: c };
      lane.windows.push(overlap ? { ...w, overlap } : w);
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
      cpuUsPerOp: median(lane.windows.filter((w) => w.cpuUsPerOp !== null).map((w) => w.cpuUsPerOp)),
      overlaps: lane.windows.filter((w) => w.overlap).length,
      windows: lane.windows,
      workers: o.workers,
      setupS: lane.setupS,
      failedWorkers: lane.failed,
      errors: lane.errors.toJSON(),
    };
  }
  return { cases, overlaps };
}
