// The open-loop latency case of `npm run bench` (run by bench/worker.mjs):
// operations (acquire + release) arrive at a constant rate, `o.rate` per
// second, whether or not earlier ones have finished; bench/run.ts sets the
// rate to half the floor's saturated throughput at 50 workers, measured in
// the throughput rounds just before. `o.via` says what carries them: "raw"
// or "raw-onread" (the floor, bench/raw.mjs) or "dl" (DistributedLock).
//
// There are `o.workers` resources (raw connections, or reused
// DistributedLocks, each used once before the clock starts), each on its
// own key; an arrival takes a free one, or
// waits in a FIFO backlog for the next to come free. A 1 ms ticker starts
// every arrival that is due. Each op's latency is taken from its *intended*
// arrival time (so time spent waiting for the ticker, the backlog or a busy
// event loop counts: no coordinated omission) to the end of its release;
// `service` is the same from when the op actually started. Only arrivals
// intended within the window after `o.warmupS` are recorded.
import { acquireOrThrow, Errors, msSummary, sleep } from "./common.mjs";
import { openRaw, rawAcquireRelease } from "./raw.mjs";

const keyOf = (i) => `bench-o${i}`;

/** Run the case; ctx = { o, host, port, servers, load }. */
export async function openLoop({ o, host, port, servers, load }) {
  const rate = o.rate;
  if (!(rate > 0)) throw new Error(`open loop: no rate (${rate})`);
  let resources;
  let op;
  let close;
  if (o.via === "dl") {
    const c = await load();
    resources = Array.from({ length: o.workers }, (_, i) => new c.DistributedLock({ key: keyOf(i), servers }));
    op = async (lock) => {
      await acquireOrThrow(lock);
      await lock.release();
    };
    close = (lock) => lock.close();
  } else {
    const conns = await Promise.all(
      Array.from({ length: o.workers }, () => openRaw(host, port, o.via === "raw-onread")),
    );
    resources = conns.map((conn, i) => ({ conn, key: keyOf(i) }));
    op = (r) => rawAcquireRelease(r.conn, r.key);
    close = (r) => r.conn.close();
  }

  // One op on every resource first, so that DistributedLock's connections are open (as the raw ones
  // are) before the first arrival.
  await Promise.all(resources.map(op));
  const errors = new Errors();
  const total = [];
  const service = [];
  const free = [...resources];
  const backlog = [];
  let head = 0; // backlog[head..] still waits
  let maxBacklog = 0;
  let inFlight = 0;
  const t0 = performance.now();
  const from = t0 + o.warmupS * 1000;
  const to = from + o.seconds * 1000;
  const recorded = (intended) => intended >= from && intended < to;

  const start = (r, intended) => {
    inFlight++;
    const began = performance.now();
    op(r).then(
      () => {
        const end = performance.now();
        if (recorded(intended)) {
          total.push(end - intended);
          service.push(end - began);
        }
        done(r);
      },
      (e) => {
        errors.add(e);
        done(r);
      },
    );
  };
  const done = (r) => {
    inFlight--;
    if (head < backlog.length) start(r, backlog[head++]);
    else free.push(r);
  };

  let issued = 0;
  const interval = 1000 / rate;
  for (let now = performance.now(); now < to; now = performance.now()) {
    const due = Math.floor((now - t0) / interval) + 1;
    for (; issued < due; issued++) {
      const intended = t0 + issued * interval;
      const r = free.pop();
      if (r !== undefined) start(r, intended);
      else backlog.push(intended);
    }
    maxBacklog = Math.max(maxBacklog, backlog.length - head);
    await sleep(1);
  }
  // Let what was recorded finish (10 s at most); what does not is counted.
  const drainEnd = performance.now() + 10_000;
  while ((inFlight > 0 || head < backlog.length) && performance.now() < drainEnd) await sleep(5);
  const unfinished = inFlight + backlog.length - head;
  for (const r of resources) close(r);
  return {
    via: o.via,
    rate,
    workers: o.workers,
    seconds: o.seconds,
    achievedPerS: total.length / o.seconds,
    latency: msSummary(total),
    service: msSummary(service),
    maxBacklog,
    unfinished,
    errors: errors.toJSON(),
  };
}
