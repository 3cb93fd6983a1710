/**
 * The machinery of `npm run bench` (bench/run.ts): its arguments, the
 * dflockd it starts, and the child processes that run each case
 * (bench/worker.mjs) in Node, Bun or Deno, with a line of progress per case.
 * Measures nothing itself.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { chooseServer, describeChoice, startDflockd } from "../test/harness/dflockd.ts";

export const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "node_modules", ".bin");
const WORKER = join(ROOT, "bench", "worker.mjs");

/** How each runtime is started, and which build of the package it loads. */
export const RUNTIMES: Record<string, { cmd: string; args: string[]; module: string }> = {
  node: { cmd: "node", args: ["--expose-gc"], module: join(ROOT, "dist", "node.js") },
  bun: { cmd: join(BIN, "bun"), args: [], module: join(ROOT, "dist", "bun.js") },
  deno: {
    cmd: join(BIN, "deno"),
    args: ["run", "-A", "--quiet", "--v8-flags=--expose-gc"],
    module: join(ROOT, "mod.ts"),
  },
};

export type Args = ReturnType<typeof parseArgs>;

const USAGE =
  "usage: npm run bench -- [--runtimes node,bun,deno] [--json] [--slice S] [--slices N] [--repeats N] [--scale-slices N] [--scale-repeats N] [--scale-workers 1,10,...] [--openloop-seconds S] [--locks N] [--mass N] [--mass-lease S] [--quick] [--no-build]";

export function parseArgs(argv: string[]) {
  const a = {
    json: false,
    build: true,
    runtimes: (process.env.BENCH_RUNTIMES ?? "node,bun,deno").split(","),
    slice: 0.1,
    slices: 20,
    repeats: 3,
    scaleSlices: 20,
    scaleRepeats: 3,
    scaleWorkers: [1, 10, 50, 200, 1000],
    openLoopSeconds: 3,
    locks: 10_000,
    mass: 100_000,
    massLease: 10,
    quick: false,
  };
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] = arg.includes("=") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${name} needs a value`);
      return v as string;
    };
    const num = (v = value()): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) usage(`${name} needs positive numbers`);
      return n;
    };
    given.add(name as string);
    if (name === "--json") a.json = true;
    else if (name === "--no-build") a.build = false;
    else if (name === "--quick") a.quick = true;
    else if (name === "--runtimes") a.runtimes = value().split(",");
    else if (name === "--slice") a.slice = num();
    else if (name === "--slices") a.slices = Math.round(num());
    else if (name === "--repeats") a.repeats = Math.round(num());
    else if (name === "--scale-slices") a.scaleSlices = Math.round(num());
    else if (name === "--scale-repeats") a.scaleRepeats = Math.round(num());
    else if (name === "--scale-workers")
      a.scaleWorkers = value()
        .split(",")
        .map((w) => Math.round(num(w)));
    else if (name === "--openloop-seconds") a.openLoopSeconds = num();
    else if (name === "--locks") a.locks = Math.round(num());
    else if (name === "--mass") a.mass = Math.round(num());
    else if (name === "--mass-lease") a.massLease = Math.max(2, Math.round(num()));
    else if (name === "--help" || name === "-h") usage();
    else usage(`unknown argument ${arg}`);
  }
  a.runtimes = a.runtimes.map((r) => r.trim()).filter((r) => r !== "");
  for (const r of a.runtimes) if (RUNTIMES[r] === undefined) usage(`unknown runtime ${r}`);
  if (a.quick) {
    // Few slices and one round; smaller mass case. What was given explicitly stays.
    const q = { slices: 4, repeats: 1, scaleSlices: 4, scaleRepeats: 1, openLoopSeconds: 1 };
    for (const [k, v] of Object.entries(q))
      if (!given.has(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`)) Object.assign(a, { [k]: v });
    if (!given.has("--locks")) a.locks = 2000;
    if (!given.has("--mass")) a.mass = 20_000;
  }
  if (a.locks > a.mass) a.locks = a.mass;
  return a;
}

function usage(problem?: string): never {
  if (problem) process.stderr.write(`bench: ${problem}\n`);
  process.stderr.write(`${USAGE}\n`);
  process.exit(problem ? 2 : 0);
}

// ---- the server ----
export interface Server {
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

/**
 * Start the server as the test harness would choose it, as a process of its
 * own, with the defaults plus `--max-locks maxLocks` (every key the mass
 * cases leave behind stays on the server, idle, for a minute). dflockd's
 * --max-connections defaults to 0 (unlimited), which the 1,000-worker rounds
 * need.
 */
export async function startServer(maxLocks: number): Promise<Server> {
  const choice = chooseServer();
  const description = describeChoice(choice).replace("the in-process dflockd DOUBLE", "the dflockd DOUBLE");
  const flags = ["--max-locks", String(maxLocks)];
  if (choice.kind === "real") {
    const s = await startDflockd(flags, { bin: choice.bin });
    return { description, kind: "real", host: s.host, port: s.port, stop: () => s.stop() };
  }
  // The double as a process of its own, so that its CPU is not the measured runtime's.
  const d = await startDflockd(flags, { bin: join(BIN, "bun"), args: [join(ROOT, "test", "double", "cli.ts")] });
  const { host, port, stop } = d;
  return {
    description: `${description}, run as its own process (bun test/double/cli.ts)`,
    kind: "double",
    host,
    port,
    stop,
  };
}

/** The open-files limit children get, as `ulimit -n` reports it. */
export function fileLimit(): number {
  const r = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" });
  const t = (r.stdout ?? "").trim();
  return t === "unlimited" ? Number.POSITIVE_INFINITY : Number(t) || 1024;
}

export interface ChildOutcome {
  ok: boolean;
  version?: string;
  result?: unknown;
  error?: string;
}

/** Run one case in a fresh process of `runtime`; never throws. */
export function runCase(runtime: string, which: string, server: Server, options: object, timeoutS: number) {
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

const f1 = (x: number | undefined): string => (x === undefined ? "?" : x.toFixed(1));

/** One line of progress for a finished case. */
export function brief(which: string, o: ChildOutcome, seconds: number): string {
  const t = `(${seconds.toFixed(1)} s)`;
  if (!o.ok) return `FAILED ${t}: ${o.error}`;
  // biome-ignore lint/suspicious/noExplicitAny: a child's free-form JSON, read for one line of progress
  const r = o.result as any;
  if (which === "latency") {
    const p = (k: string): string => (r[k]?.p50Us !== undefined ? `${f1(r[k].p50Us)} µs` : `failed (${r[k]?.error})`);
    return `RTT p50 ${p("rtt")}, hand-off raw p50 ${p("handoffRaw")}, DL p50 ${p("handoffDl")} ${t}`;
  }
  if (which === "openloop")
    return `${r.via} at ${Math.round(r.rate)}/s: p50 ${r.latency?.p50Ms?.toFixed(2)} ms, p99 ${r.latency?.p99Ms?.toFixed(2)} ms ${t}`;
  if (which === "mass") {
    const c = r.checkpoints?.at(-1);
    return `${r.held}/${r.asked} held in ${f1(r.acquireS)} s, ${c?.heapKiBPerLock?.toFixed(2)} KiB heap/lock, lag p99 ${r.lagHeld?.p99Ms?.toFixed(1)} ms, released in ${r.releaseS?.toFixed(2)} s, ${r.releaseErrors?.count ?? 0} errors, ${r.losses} lost ${t}`;
  }
  if (which === "interleaved") {
    const lanes = Object.entries(r.cases ?? {}).map(
      // biome-ignore lint/suspicious/noExplicitAny: as above
      ([name, c]: [string, any]) =>
        `${name} ${Math.round(c.opsPerS ?? 0).toLocaleString("en-US")}${c.failedWorkers > 0 ? ` (${c.failedWorkers} workers failed)` : ""}`,
    );
    const overlaps = r.overlaps > 0 ? `, ${r.overlaps} slices left out (another case's operations in flight)` : "";
    return `${lanes.join(", ")} ops/s (median slice)${overlaps} ${t}`;
  }
  return `${Math.round(r.opsPerS ?? 0).toLocaleString("en-US")} ops/s, ${f1(r.cpuUsPerOp)} µs CPU/op ${t}`;
}
