/**
 * The three-runtime mutex soak (a script, not a test): 4 Node + 4 Bun + 4
 * Deno processes take one key in turn for `--seconds` (default 60), each
 * bumping a shared counter under the lock. Passes when the counter equals the
 * number of entries and no two holdings overlap in the log. The server is the
 * real binary in DFLOCKD_BIN if set, else the in-process double.
 *
 *   DFLOCKD_BIN=/path/to/dflockd bun test/faults/mutex-soak.ts --seconds 60 [--locks 4]
 *
 * `--locks N`: N instances per process contend for the key as well, beside a
 * lock held throughout on a key of the process's own, so that attempts meet
 * shared connections.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { buildSync } from "esbuild";
import { startDflockd } from "../harness/dflockd.ts";
import { runChild } from "../support/runtime.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "node_modules", ".bin");
const i = process.argv.indexOf("--seconds");
const seconds = i === -1 ? 60 : Number(process.argv[i + 1]);
const l = process.argv.indexOf("--locks");
const perProcess = l === -1 ? 1 : Number(process.argv[l + 1]);
const dir = mkdtempSync(join(tmpdir(), "dflockd-mutex-soak-"));
const counterFile = join(dir, "counter");
const logFile = join(dir, "log");
writeFileSync(counterFile, "0");
writeFileSync(logFile, "");
// Node 20 runs no TypeScript: bundle the worker and the library for it.
const nodeWorker = join(dir, "worker.mjs");
const nodeLib = join(dir, "lib.mjs");
for (const [from, to] of [
  [join(ROOT, "test", "faults", "mutex-worker.ts"), nodeWorker],
  [join(ROOT, "mod.ts"), nodeLib],
]) {
  buildSync({
    entryPoints: [from as string],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: to as string,
    logLevel: "silent",
  });
}
const bin = process.env.DFLOCKD_BIN;
const server = await startDflockd(["--lease-sweep-interval", "1"], bin ? { bin } : "double");
console.log(
  `mutex soak: ${seconds} s, 12 processes × ${perProcess} locks, ${bin ? `real dflockd ${bin}` : "the in-process double"}`,
);
const endAt = Date.now() + seconds * 1000;
const worker = join(ROOT, "test", "faults", "mutex-worker.ts");
const mod = join(ROOT, "mod.ts");
const common = (entry: string, name: string): string[] => [
  entry,
  server.host,
  String(server.port),
  "soak",
  counterFile,
  logFile,
  String(endAt),
  name,
  String(perProcess),
];
const runs: Array<[string, string[]]> = [];
for (let n = 1; n <= 4; n++) {
  runs.push([process.env.NODE ?? "node", [nodeWorker, ...common(nodeLib, `node${n}`)]]);
  runs.push([join(BIN, "bun"), [worker, ...common(mod, `bun${n}`)]]);
  runs.push([join(BIN, "deno"), ["run", "-A", "--quiet", worker, ...common(`file://${mod}`, `deno${n}`)]]);
}
const results = await Promise.all(
  runs.map(async ([cmd, args]): Promise<{ name: string; entries: number } | string> => {
    const r = await runChild(cmd, args);
    return r.code === 0
      ? (JSON.parse(r.out.trim().split("\n").pop() as string) as { name: string; entries: number })
      : `${cmd} exited ${r.code}: ${r.err.slice(-500)}`;
  }),
);
await server.stop();
const failures = results.filter((r): r is string => typeof r === "string");
const entries = results.reduce((sum, r) => sum + (typeof r === "string" ? 0 : r.entries), 0);
const counter = Number(readFileSync(counterFile, "utf8"));
let overlaps = 0;
let holder: string | undefined;
for (const line of readFileSync(logFile, "utf8").split("\n")) {
  const [name, what] = line.split(" ");
  if (what === "in") {
    if (holder !== undefined) overlaps++;
    holder = name;
  } else if (what === "out") {
    if (holder !== name) overlaps++;
    holder = undefined;
  }
}
const perRuntime = ["node", "bun", "deno"].map(
  (rt) => `${rt} ${results.reduce((s, r) => s + (typeof r !== "string" && r.name.startsWith(rt) ? r.entries : 0), 0)}`,
);
console.log(`entries ${entries} (${perRuntime.join(", ")}), counter ${counter}, overlaps ${overlaps}`);
for (const f of failures) console.log(`worker failed: ${f}`);
const ok = failures.length === 0 && counter === entries && overlaps === 0 && entries > 0;
console.log(ok ? "PASS" : "FAIL");
process.exit(ok ? 0 : 1);
