/**
 * The child process of pause.test.ts, run by the runtime under test (Node
 * runs a bundle of it). It holds locks through the public API and reports
 * what they say, as JSON lines on stdout, every time on its own
 * `performance.now()`. Args: `<entry module> <host> <port> <key> <lease s> <pause|busy>`.
 *
 * - `pause`: holds `key`, then samples `lock.state`, `lock.held` and the
 *   holding's signal every 5 ms (state first: it is the first reader after a
 *   pause). A gap of more than half the lease between two samples is the
 *   pause (the parent SIGSTOPs this process); sampling goes on until the lock
 *   no longer says it holds (and 200 ms more), or a lease after the pause.
 * - `busy`: holds `key-a` and `key-b`, then blocks its event loop for a lease
 *   and 100 ms more (no request can be sent meanwhile, so both loss deadlines
 *   are behind it) and, in the same synchronous code, reads `key-a` with
 *   `held` first and `key-b` with `assertHeld()` first (or `held`, if there
 *   is no such method). Then samples both every 5 ms for up to a lease.
 *
 * Lines: `{ev:"holding"}`, `{ev:"s"}` (a sample), `{ev:"busy"}` (the readings
 * after the busy loop), `{ev:"lost"}` (onLost or a signal, as it happens),
 * `{ev:"done"}`, `{ev:"error"}`.
 */
import { writeSync } from "node:fs";
import process from "node:process";

const [entry, host, port, key, leaseArg, mode] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const { DistributedLock, LockLostError } = (await import(entry)) as typeof import("../../mod.ts");
type Lock = InstanceType<typeof DistributedLock>;

const leaseS = Number(leaseArg);
const leaseMs = leaseS * 1000;
const now = (): number => performance.now();
const out = (line: Record<string, unknown>): void => void writeSync(1, `${JSON.stringify(line)}\n`);

/** Which error a reading threw, or a signal carries: its name, and whether it is this library's LockLostError. */
function describe(err: unknown): { name: string; lockLost: boolean } | null {
  if (err === undefined) return null;
  return { name: err instanceof Error ? err.name : typeof err, lockLost: err instanceof LockLostError };
}

/** `lock.assertHeld`, the API under test, if this version of the library has it. */
function assertHeldOf(lock: Lock): (() => void) | undefined {
  const fn = (lock as unknown as { assertHeld?: unknown }).assertHeld;
  return typeof fn === "function" ? () => (fn as () => void).call(lock) : undefined;
}

/** Call `lock.assertHeld()`: `"missing"`, `"returned"`, or what it threw. */
function tryAssert(lock: Lock): unknown {
  const assertHeld = assertHeldOf(lock);
  if (assertHeld === undefined) return "missing";
  try {
    assertHeld();
    return "returned";
  } catch (err) {
    return describe(err);
  }
}

/** Acquire `k` and report every loss the moment it is told. */
async function hold(k: string): Promise<{ lock: Lock; signal: AbortSignal }> {
  const lock = new DistributedLock({
    key: k,
    servers: [[host, Number(port)]],
    leaseTtlS: leaseS,
    acquireTimeoutS: 10,
    onLost: (err) => out({ ev: "lost", how: "onLost", key: k, t: now(), error: describe(err) }),
  });
  if (!(await lock.acquire())) throw new Error(`${k}: not acquired within 10 s`);
  const signal = lock.signal;
  if (signal === undefined) throw new Error(`${k}: held, but no signal`);
  signal.addEventListener("abort", () => out({ ev: "lost", how: "signal", key: k, t: now() }), { once: true });
  return { lock, signal };
}

/** One sample of `lock`, reading the state first. */
function sample(k: string, lock: Lock, signal: AbortSignal, gap: number): Record<string, unknown> {
  const t = now();
  const state = lock.state;
  const held = lock.held;
  return {
    ev: "s",
    key: k,
    t,
    gap,
    state,
    held,
    aborted: signal.aborted,
    reason: signal.aborted ? describe(signal.reason) : null,
    current: lock.signal?.aborted ?? null,
  };
}

/** Sample now, then every 5 ms until `enough(t, sample)` says so. */
function sampleEvery5ms(
  k: string,
  lock: Lock,
  signal: AbortSignal,
  enough: (t: number, s: Record<string, unknown>) => boolean,
): Promise<void> {
  return new Promise((resolve) => {
    const s0 = sample(k, lock, signal, 0);
    out(s0);
    let prev = s0.t as number;
    const timer = setInterval(() => {
      const s = sample(k, lock, signal, now() - prev);
      prev = s.t as number;
      out(s);
      if (enough(prev, s)) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
}

async function end(locks: Lock[]): Promise<void> {
  const released: unknown[] = [];
  for (const lock of locks) {
    try {
      await lock.release();
      released.push("ok");
    } catch (err) {
      released.push(describe(err));
    }
    lock.close();
  }
  out({ ev: "done", t: now(), released });
}

async function pause(): Promise<void> {
  const { lock, signal } = await hold(key);
  let resumedAt: number | undefined;
  let unheldAt: number | undefined;
  const sampling = sampleEvery5ms(key, lock, signal, (t, s) => {
    if (resumedAt === undefined) {
      if ((s.gap as number) > leaseMs / 2) resumedAt = t;
      return false;
    }
    if (s.held !== true && s.state !== "held" && s.state !== "renewing") unheldAt ??= t;
    return (unheldAt !== undefined && t - unheldAt >= 200) || t - resumedAt >= leaseMs;
  });
  // After the first sample (taken at once): the parent stops this process when it reads this.
  out({ ev: "holding", t: now(), keys: [key] });
  await sampling;
  await end([lock]);
}

async function busy(): Promise<void> {
  const a = await hold(`${key}-a`);
  const b = await hold(`${key}-b`);
  out({ ev: "holding", t: now(), keys: [`${key}-a`, `${key}-b`] });
  // Every request of both holdings was sent before this point, so each lease ends by `from + leaseMs`.
  const from = now();
  while (now() < from + leaseMs + 100) {
    // Block the event loop: no timer, no socket, nothing runs.
  }
  // Read in the same synchronous code as the loop, before anything else can run.
  const readAt = now();
  const aHeld = a.lock.held;
  const aAssert = tryAssert(a.lock);
  const aState = a.lock.state;
  const aAborted = a.signal.aborted;
  const bAssert = tryAssert(b.lock);
  const bHeld = b.lock.held;
  const bState = b.lock.state;
  const bAborted = b.signal.aborted;
  out({
    ev: "busy",
    from,
    readAt,
    hasAssertHeld: assertHeldOf(a.lock) !== undefined,
    a: {
      key: `${key}-a`,
      held: aHeld,
      assertHeld: aAssert,
      state: aState,
      aborted: aAborted,
      reason: describe(a.signal.reason),
    },
    b: {
      key: `${key}-b`,
      assertHeld: bAssert,
      held: bHeld,
      state: bState,
      aborted: bAborted,
      reason: describe(b.signal.reason),
    },
  });
  // Then what timers make of it, for the record.
  const stop = (t: number, s: Record<string, unknown>): boolean => s.held !== true || t - readAt >= leaseMs;
  await Promise.all([
    sampleEvery5ms(`${key}-a`, a.lock, a.signal, stop),
    sampleEvery5ms(`${key}-b`, b.lock, b.signal, stop),
  ]);
  await end([a.lock, b.lock]);
}

try {
  if (mode === "pause") await pause();
  else if (mode === "busy") await busy();
  else throw new Error(`unknown mode ${mode}`);
  process.exit(0);
} catch (err) {
  out({ ev: "error", t: now(), message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}
