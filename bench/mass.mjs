// The mass case of `npm run bench` (run by bench/worker.mjs): many
// DistributedLocks held at once in one process, each on its own key.
//
// 1. Baseline: one warm-up acquire/release, a full GC, process.memoryUsage(),
//    and `o.lagIdleS` of event-loop lag with nothing held.
// 2. Acquire `o.mass` locks, `o.massBatch` at a time (each batch started
//    together, awaited with allSettled). At `o.locks` held (10,000 by
//    default) and again at `o.mass` (100,000), a full GC and heap/RSS per held
//    lock: (now - baseline) / held. The GC pauses are left out of the acquire
//    time.
// 3. Hold everything for `o.lagS` while a 10 ms setTimeout chain samples the
//    event-loop lag (actual delay - 10 ms): p50/p99/max. Renewals run in the
//    background meanwhile. The locks use `o.leaseTtlS` (10 s by default, not
//    the 33 s default), so each renews every 5 s (renewRatio 0.5) and a
//    window of 1.2 renewal intervals (6 s) sees every held lock renew at least
//    once: with 33 s the window would have to be 17 s per runtime. That is
//    100,000 renewals per 5 s (20,000/s), about 3x the rate the default lease
//    would give, so the lag measured is, if anything, pessimistic.
// 4. Mass release: release() of every held lock started in one go,
//    Promise.allSettled of all of them; the wall time and the rejections.
// Losses: every lock has one shared `onLost` callback, its calls counted by
// phase (acquiring, holding, releasing, up to 500 ms after); a release() that
// rejects with LockLostError (the loss found by the release itself, for which
// onLost is not called) counts too. `losses` is the number of distinct keys
// lost either way. One lock in 100 also has `hooks` { renewed, lost },
// counted, to show that renewals did happen in the window and to cross-check
// the losses (hooks on every lock would add their bound functions to the heap
// measured).
import { acquireOrThrow, Errors, fullGc, message, msSummary, sleep } from "./common.mjs";

/** Sample event-loop lag for `seconds`: a chain of 10 ms timeouts, each one's lateness in ms. */
async function sampleLag(seconds) {
  const lags = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await sleep(10);
    lags.push(performance.now() - t - 10);
  }
  return msSummary(lags);
}

/** Heap and RSS per held lock now, against `base`, after a full GC; and how long the GC took. */
async function perLock(base, held) {
  const t0 = performance.now();
  await sleep(20);
  fullGc();
  const m = process.memoryUsage();
  const per = (a, b) => (held === 0 ? Number.NaN : (b - a) / held / 1024);
  return {
    held,
    heapKiBPerLock: per(base.heapUsed, m.heapUsed),
    rssKiBPerLock: per(base.rss, m.rss),
    heapUsed: m.heapUsed,
    rss: m.rss,
    pauseMs: performance.now() - t0,
  };
}

/** Run the case; ctx = { o, servers, load }. */
export async function mass({ o, servers, load }) {
  const c = await load();
  const lost = { acquire: 0, hold: 0, release: 0 };
  const lostKeys = new Set();
  let phase = "acquire";
  const onLost = (err) => {
    lost[phase]++;
    lostKeys.add(err?.key);
  };
  const sample = { renewed: 0, lost: 0, locks: 0 };
  const hooks = { renewed: () => sample.renewed++, lost: () => sample.lost++ };
  const options = (key, i) => ({
    key,
    servers,
    leaseTtlS: o.leaseTtlS,
    onLost,
    ...(i % 100 === 0 ? { hooks } : {}),
  });

  // A failed warm-up is reported, not thrown: the rest still measures.
  let warmError;
  const warm = new c.DistributedLock({ key: "bench-m-warm", servers });
  try {
    await acquireOrThrow(warm);
    await warm.release();
  } catch (e) {
    warmError = message(e);
  }
  warm.close();
  await sleep(50);
  const gc = fullGc();
  const base = process.memoryUsage();
  const lagIdle = await sampleLag(o.lagIdleS);

  const locks = [];
  const errors = new Errors();
  const checkpoints = [];
  let pausedMs = 0;
  const t0 = performance.now();
  const want = [...new Set([Math.min(o.locks, o.mass), o.mass])];
  for (let i = 0; i < o.mass; ) {
    const end = Math.min(o.mass, i + o.massBatch, ...want.filter((w) => w > i));
    const batch = [];
    for (; i < end; i++) {
      if (i % 100 === 0) sample.locks++;
      batch.push(new c.DistributedLock(options(`bench-m${i}`, i)));
    }
    const got = await Promise.allSettled(batch.map((l) => acquireOrThrow(l)));
    got.forEach((g, j) => {
      if (g.status === "fulfilled") locks.push(batch[j]);
      else {
        errors.add(g.reason);
        batch[j].close();
      }
    });
    if (want.includes(i)) {
      const p = await perLock(base, locks.length);
      pausedMs += p.pauseMs;
      checkpoints.push({ asked: i, ...p });
    }
  }
  const acquireS = (performance.now() - t0 - pausedMs) / 1000;

  phase = "hold";
  const renewedBefore = sample.renewed;
  const lagHeld = await sampleLag(o.lagS);
  const renewedInWindow = sample.renewed - renewedBefore;
  const stillHeld = locks.filter((l) => l.held).length;

  phase = "release";
  const releaseErrors = new Errors();
  const r0 = performance.now();
  const released = await Promise.allSettled(locks.map((l) => l.release()));
  const releaseS = (performance.now() - r0) / 1000;
  let foundLostByRelease = 0;
  released.forEach((g, i) => {
    if (g.status === "fulfilled") return;
    releaseErrors.add(g.reason);
    if (g.reason?.name === "LockLostError") {
      foundLostByRelease++;
      lostKeys.add(locks[i].key);
    }
  });
  await sleep(500);
  for (const l of locks) l.close();

  return {
    asked: o.mass,
    held: locks.length,
    stillHeld,
    leaseTtlS: o.leaseTtlS,
    gc,
    baseline: { heapUsed: base.heapUsed, rss: base.rss },
    checkpoints,
    acquireS,
    lagIdle,
    lagHeld,
    lagS: o.lagS,
    sample: { ...sample, renewedInWindow },
    releaseS,
    releaseErrors: releaseErrors.toJSON(),
    lost: { ...lost, foundByRelease: foundLostByRelease },
    losses: lostKeys.size,
    errors: errors.toJSON(),
    warmError,
  };
}
