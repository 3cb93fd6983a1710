// Helpers shared by the bench cases (bench/worker.mjs and the case files it
// loads): sleeping, error text, quantiles, error tallies, CPU time, forced GC.
// Plain JavaScript, so that Node, Bun and Deno all run it as it is.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const message = (e) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/** The `p` quantile (0..1) of `xs`, NaN if empty. */
export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
export const median = (xs) => percentile(xs, 0.5);

/** p50, p99 and max of `ms` (milliseconds), with the sample count. */
export const msSummary = (ms) => ({
  n: ms.length,
  p50Ms: percentile(ms, 0.5),
  p99Ms: percentile(ms, 0.99),
  maxMs: percentile(ms, 1),
});

/** User + system CPU of this process so far, in microseconds (Node, Bun and Deno all have process.cpuUsage). */
export const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Errors of a case's workers: how many, and the first few distinct messages. */
export class Errors {
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

/** Full GC, twice (the second catches what finalizers of the first let go); false if none can be forced. */
export function fullGc() {
  for (let i = 0; i < 2; i++) {
    if (globalThis.Bun !== undefined) Bun.gc(true);
    else if (typeof globalThis.gc === "function") globalThis.gc();
    else return false;
  }
  return true;
}

/** acquire() that throws when it times out instead of resolving false. */
export async function acquireOrThrow(lock) {
  if (!(await lock.acquire())) throw new Error(`${lock.key}: acquire() timed out`);
}
