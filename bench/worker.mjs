// One case of `npm run bench`, in whichever runtime runs this file (Node, Bun
// or Deno); bench/run.ts starts one such process per runtime, case and round.
//
//   node --expose-gc bench/worker.mjs <module> <case> <host> <port> [<options JSON>]
//   bun bench/worker.mjs ...          deno run -A --v8-flags=--expose-gc bench/worker.mjs ...
//
// <module> is the package build for the runtime (dist/node.js, dist/bun.js,
// or mod.ts for Deno). Cases:
//   interleaved  closed-loop throughput (ops/s and CPU/op) of the cases `o.cases` (raw, raw-onread,
//                lowlevel, dl, dl-withlock, dl-new, client, client-withlock), `workers` workers
//                each, taking turns in slices: bench/throughput.mjs
//   openloop     constant-rate arrivals through the floor or DistributedLock, per-op latency
//                p50/p99: bench/openloop.mjs
//   latency      loopback RTT of a raw one-line request, and the contended hand-off A -> B (raw and
//                DistributedLock): bench/latency.mjs
//   mass         100,000 DistributedLocks held: heap/RSS per lock at 10,000 and 100,000, event-loop
//                lag while held, mass release time, errors and losses: bench/mass.mjs
//
// Prints one JSON line last: {"ok":true,"result":{...}} or {"ok":false,"error":"..."}.
// A failure inside a case is reported in its result (errors, failed workers),
// not thrown, so that one broken case never hides the others.
import process from "node:process";
import { pathToFileURL } from "node:url";
import { acquireOrThrow, Errors, message } from "./common.mjs";
import { latency } from "./latency.mjs";
import { mass } from "./mass.mjs";
import { openLoop } from "./openloop.mjs";
import { RUNTIME } from "./raw.mjs";
import { interleaved } from "./throughput.mjs";

const [modulePath, which, host, portText, optionsText] = process.argv.slice(2);
const port = Number(portText);
// Defaults; bench/run.ts passes its own.
const defaults = {
  workers: 50,
  warmupS: 0.5,
  seconds: 2,
  warmupOps: 5000,
  sliceS: 0.1,
  slices: 10,
  cases: ["raw", "dl"],
  rttReps: 2000,
  handoffReps: 500,
  locks: 10_000,
  mass: 100_000,
  massBatch: 1000,
  leaseTtlS: 10,
  lagS: 6,
  lagIdleS: 1,
};
const o = { ...defaults, ...JSON.parse(optionsText ?? "{}") };
const servers = [[host, port]];

// Rejections nobody awaited (say, from a client library being edited) are
// counted, not allowed to end the process.
const stray = new Errors();
process.on?.("unhandledRejection", (e) => stray.add(e));
globalThis.addEventListener?.("unhandledrejection", (ev) => {
  ev.preventDefault();
  stray.add(ev.reason);
});

/** The package under test (loaded only by the cases that use it). */
const load = () => import(pathToFileURL(modulePath).href);
const ctx = { o, host, port, servers, load };

const CASES = {
  interleaved: () => interleaved(ctx, o.cases),
  openloop: () => openLoop(ctx),
  mass: () => mass(ctx),
  async latency() {
    let pkg;
    try {
      pkg = await load();
    } catch (e) {
      pkg = { loadError: message(e) };
    }
    return latency({ host, port, o, DistributedLock: pkg.DistributedLock, loadError: pkg.loadError, acquireOrThrow });
  },
};

async function main() {
  const run = CASES[which];
  if (run === undefined) throw new Error(`unknown case ${which}; expected one of ${Object.keys(CASES).join(", ")}`);
  const result = await run(ctx);
  result.strayRejections = stray.toJSON();
  return result;
}

const version =
  RUNTIME === "deno" ? Deno.version.deno : RUNTIME === "bun" ? Bun.version : process.version.replace(/^v/, "");
let line;
try {
  line = JSON.stringify({ ok: true, runtime: RUNTIME, version, result: await main() });
} catch (e) {
  line = JSON.stringify({ ok: false, runtime: RUNTIME, version, error: message(e) });
}
process.stdout.write(`${line}\n`, () => process.exit(0));
