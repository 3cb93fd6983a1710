/**
 * `npm run bench` (runs as `bun bench/run.ts`): the client benchmark on Node,
 * Bun and Deno side by side, in one run, against one dflockd.
 *
 * 1. Builds dist/ (`npm run build`; skip with --no-build). Node loads
 *    dist/node.js, Bun dist/bun.js, Deno mod.ts from source.
 * 2. Picks the server as the test harness does (test/harness/dflockd.ts
 *    `chooseServer`: DFLOCKD_SERVER=auto|real|double, DFLOCKD_BIN, PATH, ...):
 *    a real dflockd if one is found, else the project's double, and says
 *    which in its first line. Either way the server is a process of its own
 *    (bench/runner.ts), so its CPU never counts against the runtime measured.
 *    Flags: the defaults (dflockd's --max-connections is unlimited), plus
 *    `--max-locks` room for every runtime's mass case.
 * 3. Runs the cases of bench/worker.mjs in fresh child processes, one
 *    process at a time, per runtime in this order:
 *    - throughput at 50 workers (bench/throughput.mjs): the low-level API,
 *      DistributedLock (reused, withLock, new per op), and a DflockdClient
 *      (client.lock(key) reused; client.lock(key).withLock per op), each in
 *      a process of its own beside the raw-socket floor (bench/raw.mjs; on
 *      Node two floors: 'data' events and `onread`). In one process the
 *      floor(s) and the case take turns in 0.1 s slices (--slice), 20 each
 *      (--slices), in an order where each follows each other equally often;
 *      3 rounds (--repeats), the order of the cases rotated each round. A
 *      ratio to the floor sums the slices of the same cycles of turns over
 *      every round (bench/ratios.ts), and comes with its spread: the lowest
 *      and highest ratio of a single round. Node's ratios are against its
 *      faster floor, but for the low-level targets, set (issue 9) against
 *      the floor that reads through 'data' events.
 *    - scaling: the floor(s) and DistributedLock (reused) at 1, 10, 50, 200
 *      and 1,000 workers, the same way, in 3 rounds (--scale-repeats) of 20
 *      slices (--scale-slices), 60 at one worker. From 200 workers on, a
 *      slice is twice as long and the warm-up 1 s: a process that has just
 *      opened hundreds of connections settles slowly.
 *    - latency (bench/latency.mjs): RTT and the contended hand-off.
 *    - open loop (bench/openloop.mjs): arrivals at half the floor's median
 *      saturated ops/s at 50 workers (from the throughput rounds just run),
 *      through the floor and through DistributedLock; p50/p99 of each.
 *    Then every runtime's mass case (bench/mass.mjs), last, as it leaves
 *    100,000 idle keys on the server for a minute: heap/RSS per held lock at
 *    10,000 and 100,000, event-loop lag while held, mass release time, errors
 *    and losses.
 * 4. Prints each runtime's numbers and ratios with the targets beside them,
 *    then a side-by-side table (bench/report.ts); `--json` prints the raw
 *    results and the ratios as JSON instead. Progress goes to stderr.
 *
 * Options (bench/runner.ts): --runtimes node,bun,deno (or BENCH_RUNTIMES),
 * --json, --slice S (slice length, default 0.1), --slices N (slices per
 * case and process at 50 workers, default 20), --repeats N (rounds at 50
 * workers, default 3), --scale-slices N (default 20; three times as many at
 * one worker), --scale-repeats N (default 3), --scale-workers
 * 1,10,50,200,1000, --openloop-seconds S (default 3), --locks N (the smaller
 * heap checkpoint, default 10000), --mass N (locks held in the mass case,
 * default 100000), --mass-lease S (their leaseTtlS, default 10; see
 * bench/mass.mjs), --quick (4 slices, one round, 2,000 and 20,000 locks),
 * --no-build.
 *
 * Time: on this 2-core machine a default run takes about 6 minutes on Node
 * (throughput ~2.5 min, scaling ~3.5 min, latency and open loop ~15 s) and 4
 * on Bun and Deno (two floors on Node make its processes half as long again),
 * plus about 15 s per runtime for the 100,000-lock mass case: about 15
 * minutes for all three; --quick takes about a minute per runtime.
 *
 * Measures only: the exit code is 0 whatever the numbers are, and a runtime
 * or case that fails is reported and skipped. It is non-zero only when no
 * server could be started or the arguments are wrong.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import process from "node:process";
import {
  median,
  type OpenLoop,
  type Outcome,
  type RuntimeResult,
  ratios,
  strongerFloor,
  type Throughput,
  type ThroughputCase,
  tp,
} from "./ratios.ts";
import { runtimeSection, sideBySide } from "./report.ts";
import {
  brief,
  type ChildOutcome,
  fileLimit,
  parseArgs,
  ROOT,
  RUNTIMES,
  runCase,
  type Server,
  startServer,
} from "./runner.ts";

const args = parseArgs(process.argv.slice(2));
/**
 * At one worker, this many times the slices (see the header): one worker's rate swings the most between slices
 * (each op waits on two wake-ups of two processes), and its slices cost the least.
 */
const ONE_WORKER_SLICES = 3;
/** Scaling worker counts from which a slice is twice as long, after a 1 s warm-up (see the header). */
const LONG_SCALE_FROM = 200;
const say = (line: string): void => {
  if (args.json) process.stderr.write(`${line}\n`);
  else console.log(line);
};
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

// ---- setup ----
const limit = fileLimit();
const notes: string[] = [];
// Each process opens up to one connection per worker of each case it runs
// (three on Node: two floors and DistributedLock); the mass case about
// 64 + mass/64 (the pool shares a connection among up to 64 holdings).
const scaleWorkers = args.scaleWorkers.filter((w) => 3 * w + 100 <= limit);
if (scaleWorkers.length < args.scaleWorkers.length)
  notes.push(
    `scaling: ${args.scaleWorkers.filter((w) => !scaleWorkers.includes(w)).join(", ")} workers left out: ulimit -n is ${limit}`,
  );
// Room for every runtime's mass case: their keys stay on the server (idle) for a minute.
const maxLocks = args.runtimes.length * (args.mass + 1000) + 20_000;
let server: Server;
try {
  server = await startServer(maxLocks);
} catch (e) {
  say(`bench server: none could be started: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
say(`bench server: ${server.description} on ${server.host}:${server.port} (--max-locks ${maxLocks})`);
const cpus = availableParallelism();
if (server.kind === "double")
  notes.push(
    "the double serves on one thread: where it is the bottleneck, throughput ratios sit near 1 whatever the client costs; CPU/op ratios say more",
  );
if (cpus <= 2)
  notes.push(`${cpus} CPUs: the server and the runtime measured share them, so absolute numbers are low and noisy`);
for (const n of notes) say(`note: ${n}`);

if (args.build) {
  progress("building dist/ (npm run build) ...");
  const b = spawnSync("npm", ["run", "build", "--silent"], { cwd: ROOT, encoding: "utf8" });
  if (b.status !== 0) {
    const tail = `${b.stdout}${b.stderr}`.trim().split("\n").slice(-5).join("\n  ");
    say(`note: npm run build failed (code ${b.status}); Node and Bun load whatever dist/ holds:\n  ${tail}`);
  }
}

const options = {
  workers: 50,
  warmupS: args.quick ? 0.2 : 0.5,
  warmupOps: 5000,
  sliceS: args.slice,
  slices: args.slices,
  repeats: args.repeats,
  scaleSlices: args.scaleSlices,
  scaleRepeats: args.scaleRepeats,
  scaleWorkers,
  openLoopSeconds: args.openLoopSeconds,
  rttReps: args.quick ? 500 : 2000,
  handoffReps: args.quick ? 100 : 500,
  locks: args.locks,
  mass: args.mass,
  massBatch: 1000,
  leaseTtlS: args.massLease,
  // 1.2 renewal intervals (renewRatio 0.5): every held lock renews at least once in the window.
  lagS: Math.round(args.massLease * 0.6 * 10) / 10,
  lagIdleS: 1,
};
const startedAt = Date.now();
const results: Record<string, RuntimeResult> = {};
const broken = new Set<string>();
/** The floor(s) every interleaved process runs beside the case under test (Node has two). */
const floorsOf = (runtime: string): ThroughputCase[] => (runtime === "node" ? ["raw", "raw-onread"] : ["raw"]);
/** The cases measured against the floor at 50 workers. */
const CLIENT_CASES: readonly ThroughputCase[] = [
  "lowlevel",
  "dl",
  "dl-withlock",
  "dl-new",
  "client",
  "client-withlock",
];
for (const runtime of args.runtimes) {
  const rt = RUNTIMES[runtime] as (typeof RUNTIMES)[string];
  results[runtime] = { cases: {}, scaling: {} };
  if (!existsSync(rt.module)) {
    progress(`${runtime}: skipped: ${rt.module} is missing (did the build fail?)`);
    broken.add(runtime);
    (results[runtime] as RuntimeResult).cases = { latency: { error: `${rt.module} is missing` } };
  }
}

/** Run a case in `runtime` and print a line of progress; a runtime that cannot start at all is marked broken. */
async function run(runtime: string, which: string, label: string, opts: object, budgetS: number) {
  const t0 = performance.now();
  const o = await runCase(runtime, which, server, opts, budgetS);
  progress(`${runtime.padEnd(5)} ${label.padEnd(22)} ${brief(which, o, (performance.now() - t0) / 1000)}`);
  const entry = results[runtime] as RuntimeResult;
  if (o.version !== undefined) entry.version = o.version;
  else if (!o.ok && entry.version === undefined) broken.add(runtime);
  return o;
}

/** The result of one interleaved process (bench/throughput.mjs). */
interface Interleaved {
  cases: Record<string, Throughput>;
  overlaps: number;
}

/**
 * Fold the slices of one interleaved process into `cases`: each slice is
 * tagged with `run`, the process's serial number, so that bench/ratios.ts
 * pairs only slices of the same process and cycle. A process that failed is
 * the failure of the case it was run for (the last of `names`), not of the
 * floors beside it.
 */
function addRun(
  cases: Record<string, Outcome<Throughput> | undefined>,
  names: readonly string[],
  run: number,
  o: ChildOutcome,
) {
  for (const which of names) {
    const prev = cases[which];
    const t = prev === undefined || "error" in prev ? undefined : prev;
    // An earlier round that failed outright stays counted among the errors.
    const earlier = prev !== undefined && "error" in prev ? { count: 1, messages: [prev.error] } : undefined;
    const r = o.ok ? (o.result as Interleaved).cases[which] : undefined;
    if (r === undefined) {
      if (!o.ok && which !== names.at(-1)) continue;
      const why = o.error ?? "no result";
      if (t === undefined) cases[which] = { error: why };
      else t.errors = mergeErrors(t.errors, { count: 1, messages: [why] });
      continue;
    }
    const errors = mergeErrors(earlier, mergeErrors(t?.errors, r.errors));
    const windows = [...(t?.windows ?? []), ...r.windows.map((w) => ({ ...w, round: run }))];
    const cpu = windows.flatMap((w) => (w.cpuUsPerOp === null ? [] : [w.cpuUsPerOp]));
    cases[which] = {
      ...r,
      windows,
      opsPerS: median(windows.map((w) => w.opsPerS)),
      cpuUsPerOp: median(cpu),
      failedWorkers: Math.max(t?.failedWorkers ?? 0, r.failedWorkers),
      overlaps: (t?.overlaps ?? 0) + (r.overlaps ?? 0),
      errors,
    };
  }
}

function mergeErrors(a: Throughput["errors"], b: Throughput["errors"]): Throughput["errors"] {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return { count: a.count + b.count, messages: [...new Set([...a.messages, ...b.messages])].slice(0, 3) };
}

const rotate = <T>(xs: readonly T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length] as T);

/** Seconds a child may take for an interleaved run of `lanes` cases (setup of 1,000 connects included). */
const interleavedBudget = (lanes: number, warmupS: number, sliceS: number, slices: number): number =>
  60 + lanes * (30 + 10 + warmupS) + lanes * slices * (sliceS + 5);

let serial = 0;
for (const runtime of args.runtimes) {
  const entry = results[runtime] as RuntimeResult;
  const cases = entry.cases as Record<string, Outcome<Throughput> | undefined>;
  const floors = floorsOf(runtime);
  // Throughput at 50 workers: in each round, one process per case, taking turns with the floor(s).
  for (let round = 0; round < options.repeats && !broken.has(runtime); round++)
    for (const which of rotate(CLIENT_CASES, round)) {
      if (broken.has(runtime)) break;
      const names = [...floors, which];
      const opts = { ...options, cases: names };
      const budget = interleavedBudget(names.length, options.warmupS, options.sliceS, options.slices);
      const o = await run(runtime, "interleaved", `${which} #${round + 1}`, opts, budget);
      addRun(cases, names, serial++, o);
    }
  // Scaling: DistributedLock taking turns with the floor(s), one process per worker count and round.
  for (let round = 0; round < options.scaleRepeats && !broken.has(runtime); round++)
    for (const workers of scaleWorkers) {
      if (broken.has(runtime)) break;
      const long = workers >= LONG_SCALE_FROM;
      const names = [...floors, "dl"];
      const warmupS = long ? 1 : options.warmupS;
      const sliceS = long ? 2 * options.sliceS : options.sliceS;
      const slices = workers === 1 ? ONE_WORKER_SLICES * options.scaleSlices : options.scaleSlices;
      const opts = { ...options, workers, warmupS, sliceS, slices, cases: names };
      const budget = interleavedBudget(names.length, warmupS, sliceS, slices);
      const o = await run(runtime, "interleaved", `dl ×${workers} #${round + 1}`, opts, budget);
      const scaling = entry.scaling ?? {};
      entry.scaling = scaling;
      const at = scaling[String(workers)] ?? {};
      scaling[String(workers)] = at;
      addRun(at as Record<string, Outcome<Throughput> | undefined>, names, serial++, o);
    }
  if (broken.has(runtime)) continue;
  const lat = await run(runtime, "latency", "latency", options, 180);
  entry.cases.latency = lat.ok ? (lat.result as never) : { error: lat.error ?? "failed" };
  // Open loop at half the faster floor's saturated rate.
  const floor = strongerFloor(entry.cases);
  const floorOps = tp(entry.cases[floor])?.opsPerS;
  if (floorOps === undefined) entry.cases.openloop = { error: "no floor throughput to take half of" };
  else {
    const open: { floor?: Outcome<OpenLoop>; dl?: Outcome<OpenLoop> } = {};
    for (const [slot, via] of [
      ["floor", floor],
      ["dl", "dl"],
    ] as const) {
      const opts = { ...options, via, rate: floorOps / 2, seconds: options.openLoopSeconds };
      const o = await run(runtime, "openloop", `openloop ${via}`, opts, options.warmupS + options.openLoopSeconds + 60);
      open[slot] = o.ok ? (o.result as OpenLoop) : { error: o.error ?? "failed" };
    }
    entry.cases.openloop = open;
  }
}
for (const runtime of args.runtimes) {
  if (broken.has(runtime)) continue;
  const o = await run(runtime, "mass", "mass", options, 120 + args.mass / 500);
  (results[runtime] as RuntimeResult).cases.mass = o.ok ? (o.result as never) : { error: o.error ?? "failed" };
}
for (const runtime of broken) {
  const c = (results[runtime] as RuntimeResult).cases;
  c.latency ??= { error: "skipped: the runtime failed to run" };
}
await server.stop();
const elapsedS = (Date.now() - startedAt) / 1000;

if (args.json) {
  const runtimes = Object.fromEntries(Object.entries(results).map(([n, r]) => [n, { ...r, ratios: ratios(r) }]));
  const out = {
    server: { kind: server.kind, description: server.description },
    cpus,
    options,
    notes,
    elapsedS,
    runtimes,
  };
  console.log(JSON.stringify(out, null, 2));
} else {
  say("");
  say(
    `client benchmark, ${new Date().toISOString()}: each case taking turns with the floor in one process, ${options.repeats} rounds of ${options.slices} slices of ${options.sliceS} s at 50 workers, ${options.scaleRepeats} rounds of ${options.scaleSlices} slices per worker count (${ONE_WORKER_SLICES * options.scaleSlices} at one worker; ${2 * options.sliceS} s from ${LONG_SCALE_FROM} workers) (ops/s: median slice; ratios: summed over the paired slices of every round, [lowest–highest round]), ${elapsedS.toFixed(0)} s in all`,
  );
  say(
    "one op = acquire + release; CPU/op = the client process's user + system CPU per op; ✓/✗ = target met (information only)",
  );
  for (const [name, r] of Object.entries(results)) {
    say("");
    for (const line of runtimeSection(name, r)) say(line);
  }
  say("");
  for (const line of sideBySide(results)) say(line);
}
process.exit(0);
