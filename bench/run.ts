/**
 * `npm run bench` (runs as `bun bench/run.ts`): the client benchmark on Node,
 * Bun and Deno side by side, in one run, against one dflockd.
 *
 * 1. Builds dist/ (`npm run build`; skip with --no-build). Node loads
 *    dist/node.js, Bun dist/bun.js, Deno mod.ts from source.
 * 2. Picks the server as the test harness does (test/harness/dflockd.ts
 *    `chooseServer`: DFLOCKD_SERVER=auto|real|double, DFLOCKD_BIN, PATH, ...):
 *    a real dflockd if one is found, else the project's double, and says
 *    which in its first line. Either way the server is a process of its own,
 *    so its CPU never counts against the runtime measured: the real binary via
 *    `startDflockd`, the double via `bun test/double/cli.ts`. Flags: the
 *    defaults, plus `--max-locks 20000` (more if --locks asks) for the
 *    held-locks case.
 * 3. Runs each case of bench/worker.mjs in a fresh child process per runtime:
 *    the raw-socket floor (bench/raw.mjs), the low-level API,
 *    DistributedLock (reused, withLock, new per op), RTT and contended
 *    hand-off latency, and heap/RSS per held lock. One process at a time:
 *    each runtime's cases in turn, then every runtime's heap case last. The
 *    throughput cases run in rounds, one window per case and round, the
 *    order rotated each round; a ratio to the floor is the median of the
 *    per-round ratios, so a machine that gets busier or quieter during the
 *    run moves both sides of each ratio alike.
 * 4. Prints each runtime's numbers and ratios with the targets beside them,
 *    then a side-by-side table (bench/report.ts); `--json` prints the raw
 *    results as JSON instead. Progress goes to stderr.
 *
 * Options: --runtimes node,bun,deno (or BENCH_RUNTIMES), --json, --seconds S
 * (per window, default 1.5), --repeats N (rounds, so windows per case, median
 * reported, default 5), --locks N (held-locks case, default 10000, lowered to fit
 * `ulimit -n`), --quick (short windows, one repeat, 2000 locks), --no-build.
 *
 * Measures only: the exit code is 0 whatever the numbers are, and a runtime
 * or case that fails is reported and skipped. It is non-zero only when no
 * server could be started or the arguments are wrong.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { chooseServer, describeChoice, startDflockd } from "../test/harness/dflockd.ts";
import {
  median,
  type Outcome,
  type RuntimeResult,
  ratios,
  runtimeSection,
  sideBySide,
  type Throughput,
} from "./report.ts";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "node_modules", ".bin");
const WORKER = join(ROOT, "bench", "worker.mjs");

/** How each runtime is started, and which build of the package it loads. */
const RUNTIMES: Record<string, { cmd: string; args: string[]; module: string }> = {
  node: { cmd: "node", args: ["--expose-gc"], module: join(ROOT, "dist", "node.js") },
  bun: { cmd: join(BIN, "bun"), args: [], module: join(ROOT, "dist", "bun.js") },
  deno: {
    cmd: join(BIN, "deno"),
    args: ["run", "-A", "--quiet", "--v8-flags=--expose-gc"],
    module: join(ROOT, "mod.ts"),
  },
};
const THROUGHPUT = ["raw", "lowlevel", "dl", "dl-withlock", "dl-new"] as const;
const CASES = [...THROUGHPUT, "latency", "heap"] as const;

// ---- arguments ----
function parseArgs(argv: string[]) {
  const a = {
    json: false,
    build: true,
    runtimes: (process.env.BENCH_RUNTIMES ?? "node,bun,deno").split(","),
    seconds: 1.5,
    repeats: 5,
    locks: 10_000,
    quick: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] = arg.includes("=") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${name} needs a value`);
      return v as string;
    };
    const num = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v <= 0) usage(`${name} needs a positive number`);
      return v;
    };
    if (name === "--json") a.json = true;
    else if (name === "--no-build") a.build = false;
    else if (name === "--quick") a.quick = true;
    else if (name === "--runtimes") a.runtimes = value().split(",");
    else if (name === "--seconds") a.seconds = num();
    else if (name === "--repeats") a.repeats = Math.round(num());
    else if (name === "--locks") a.locks = Math.round(num());
    else if (name === "--help" || name === "-h") usage();
    else usage(`unknown argument ${arg}`);
  }
  a.runtimes = a.runtimes.map((r) => r.trim()).filter((r) => r !== "");
  for (const r of a.runtimes) if (RUNTIMES[r] === undefined) usage(`unknown runtime ${r}`);
  if (a.quick) Object.assign(a, { seconds: 0.5, repeats: 1, locks: Math.min(a.locks, 2000) });
  return a;
}

function usage(problem?: string): never {
  if (problem) process.stderr.write(`bench: ${problem}\n`);
  process.stderr.write(
    "usage: npm run bench -- [--runtimes node,bun,deno] [--json] [--seconds S] [--repeats N] [--locks N] [--quick] [--no-build]\n",
  );
  process.exit(problem ? 2 : 0);
}

const args = parseArgs(process.argv.slice(2));
const say = (line: string): void => {
  if (args.json) process.stderr.write(`${line}\n`);
  else console.log(line);
};
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

// ---- the server ----
interface Server {
  description: string;
  kind: "real" | "double";
  host: string;
  port: number;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    for (const c of children) c.kill("SIGKILL");
    process.exit(130);
  });
}
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

async function startServer(maxLocks: number): Promise<Server> {
  const choice = chooseServer();
  const description = describeChoice(choice).replace("the in-process dflockd DOUBLE", "the dflockd DOUBLE");
  const flags = ["--max-locks", String(maxLocks)];
  if (choice.kind === "real") {
    const s = await startDflockd(flags, { bin: choice.bin });
    return { description, kind: "real", host: s.host, port: s.port, stop: () => s.stop() };
  }
  // The double as a process of its own, so that its CPU is not the measured runtime's.
  const d = await startDflockd(flags, { bin: join(BIN, "bun"), args: [join(ROOT, "test", "double", "cli.ts")] });
  return { description: `${description}, run as its own process (bun test/double/cli.ts)`, kind: "double", ...d };
}

// ---- the runtimes ----
/** The open-files limit children get, as `ulimit -n` reports it. */
function fileLimit(): number {
  const r = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" });
  const t = (r.stdout ?? "").trim();
  return t === "unlimited" ? Number.POSITIVE_INFINITY : Number(t) || 1024;
}

interface ChildOutcome {
  ok: boolean;
  version?: string;
  result?: unknown;
  error?: string;
}

/** Run one case in a fresh process of `runtime`; never throws. */
function runCase(runtime: string, which: string, server: Server, options: object, timeoutS: number) {
  const rt = RUNTIMES[runtime] as (typeof RUNTIMES)[string];
  const argv = [...rt.args, WORKER, rt.module, which, server.host, String(server.port), JSON.stringify(options)];
  return new Promise<ChildOutcome>((resolve) => {
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const child = spawn(rt.cmd, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutS * 1000);
    child.stdout?.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr?.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    const finish = (why: string): void => {
      clearTimeout(timer);
      children.delete(child);
      const last = stdout
        .trim()
        .split("\n")
        .reverse()
        .find((l) => l.startsWith("{"));
      if (last !== undefined) {
        try {
          resolve(JSON.parse(last) as ChildOutcome);
          return;
        } catch {
          // Fall through to the error.
        }
      }
      const tail = stderr.trim().split("\n").slice(-3).join(" / ");
      resolve({ ok: false, error: `${timedOut ? `timed out after ${timeoutS} s` : why}${tail ? `: ${tail}` : ""}` });
    };
    child.once("error", (e) => finish(`could not start ${rt.cmd}: ${e.message}`));
    child.once("close", (code, signal) => finish(`exited with ${signal ?? `code ${code}`}`));
  });
}

/** One line of progress for a finished case. */
function brief(which: string, o: ChildOutcome, seconds: number): string {
  const t = `(${seconds.toFixed(1)} s)`;
  if (!o.ok) return `FAILED ${t}: ${o.error}`;
  const r = o.result as Record<string, { p50Us?: number; error?: string } | undefined> & {
    opsPerS?: number;
    cpuUsPerOp?: number;
    heapKiBPerLock?: number;
    rssKiBPerLock?: number;
  };
  if (which === "latency") {
    const p = (k: string): string => {
      const x = r[k];
      return x?.p50Us !== undefined ? `${x.p50Us.toFixed(1)} µs` : `failed (${x?.error})`;
    };
    return `RTT p50 ${p("rtt")}, hand-off raw p50 ${p("handoffRaw")}, DL p50 ${p("handoffDl")} ${t}`;
  }
  if (which === "heap")
    return `${r.heapKiBPerLock?.toFixed(2)} KiB heap, ${r.rssKiBPerLock?.toFixed(2)} KiB RSS per lock ${t}`;
  return `${Math.round(r.opsPerS ?? 0).toLocaleString("en-US")} ops/s, ${r.cpuUsPerOp?.toFixed(1)} µs CPU/op ${t}`;
}

// ---- main ----
const limit = fileLimit();
const locks = Math.max(1, Math.min(args.locks, Math.floor(limit - 300)));
const notes: string[] = [];
if (locks < args.locks) notes.push(`held-locks case: ${locks} locks, not ${args.locks}: ulimit -n is ${limit}`);
// Room for the held locks, whose keys stay on the server (idle) for a minute.
const maxLocks = Math.max(20_000, locks + 1000);
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
  seconds: args.seconds,
  repeats: args.repeats,
  rttReps: args.quick ? 500 : 2000,
  handoffReps: args.quick ? 100 : 500,
  locks,
  batch: 200,
};
const startedAt = Date.now();
const results: Record<string, RuntimeResult> = {};
const broken = new Set<string>();
const record = (runtime: string, which: string, outcome: unknown): void => {
  ((results[runtime] as RuntimeResult).cases as Record<string, unknown>)[which] = outcome;
};
for (const runtime of args.runtimes) {
  const rt = RUNTIMES[runtime] as (typeof RUNTIMES)[string];
  results[runtime] = { cases: {} };
  if (!existsSync(rt.module)) {
    progress(`${runtime}: skipped: ${rt.module} is missing (did the build fail?)`);
    broken.add(runtime);
    for (const c of CASES) record(runtime, c, { error: `${rt.module} is missing` });
  }
}
// Every runtime's heap case comes last: it leaves 10,000 idle keys on the
// server for a minute, which would swell the `stats` replies the latency
// case polls (and the garbage both sides make of them).
// Throughput in rounds: every case once per round (one window), the order
// rotated each round, so each case has a window beside each of the floor's.
const rounds = Array.from({ length: options.repeats }, (_, round) =>
  THROUGHPUT.map((_c, i) => THROUGHPUT[(i + round) % THROUGHPUT.length] as string).map((c) => [c, round] as const),
);
const plan = [
  ...args.runtimes.flatMap((r) => [
    ...rounds.flat().map(([c, round]) => [r, c, round] as const),
    [r, "latency", 0] as const,
  ]),
  ...args.runtimes.map((r) => [r, "heap", 0] as const),
];
const roundOptions = { ...options, repeats: 1 };
for (const [runtime, which, round] of plan) {
  if (broken.has(runtime)) continue;
  const entry = results[runtime] as RuntimeResult;
  const throughput = (THROUGHPUT as readonly string[]).includes(which);
  const budget = throughput ? options.warmupS + options.seconds + 40 : 180;
  const t0 = performance.now();
  const o = await runCase(runtime, which, server, throughput ? roundOptions : options, budget);
  const label = throughput ? `${which} #${round + 1}` : which;
  progress(`${runtime.padEnd(5)} ${label.padEnd(15)} ${brief(which, o, (performance.now() - t0) / 1000)}`);
  if (o.version !== undefined) entry.version = o.version;
  if (throughput) addRound(entry, which, round, o);
  else record(runtime, which, o.ok ? o.result : { error: o.error ?? "failed" });
  // A runtime that cannot start at all (no JSON line, so no version): skip its other cases.
  if (!o.ok && o.version === undefined && round === 0 && which === rounds[0]?.[0]?.[0]) {
    broken.add(runtime);
    for (const c of CASES) if (c !== which) record(runtime, c, { error: "skipped: the runtime failed to run" });
  }
}

/** Fold one round's window of a throughput case into the case's result. */
function addRound(entry: RuntimeResult, which: string, round: number, o: ChildOutcome): void {
  const cases = entry.cases as Record<string, Outcome<Throughput> | undefined>;
  const prev = cases[which];
  const t = prev === undefined || "error" in prev ? undefined : prev;
  if (!o.ok) {
    if (t === undefined) cases[which] = { error: o.error ?? "failed" };
    else t.errors = mergeErrors(t.errors, { count: 1, messages: [o.error ?? "failed"] });
    return;
  }
  const r = o.result as Throughput;
  const windows = [...(t?.windows ?? []), ...r.windows.map((w) => ({ ...w, round }))];
  cases[which] = {
    ...r,
    windows,
    opsPerS: median(windows.map((w) => w.opsPerS)),
    cpuUsPerOp: median(windows.map((w) => w.cpuUsPerOp)),
    failedWorkers: Math.max(t?.failedWorkers ?? 0, r.failedWorkers),
    errors: mergeErrors(t?.errors, r.errors),
  };
}

function mergeErrors(a: Throughput["errors"], b: Throughput["errors"]): Throughput["errors"] {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return { count: a.count + b.count, messages: [...new Set([...a.messages, ...b.messages])].slice(0, 3) };
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
    `client benchmark, ${new Date().toISOString()}: ${options.workers} workers, ${options.repeats} rounds of one ${options.seconds} s window per throughput case (ops/s: median window; ratios: median of the rounds' ratios), ${elapsedS.toFixed(0)} s in all`,
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
