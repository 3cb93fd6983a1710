// npm run bench: the same client benchmark on Node, Bun and Deno, one after
// the other in one run, against a scripted fake server on loopback (so the
// numbers measure the client and the runtime, not dflockd). Prints ops/s and
// each runtime's ratio to Node. Measures only; never fails on numbers.
import { spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules", ".bin");
const WORKER = join(ROOT, "bench", "worker.mjs");

const server = spawn("node", [join(ROOT, "test", "support", "scripted-server.mjs"), "ok"], {
  stdio: ["pipe", "pipe", "inherit"],
});
const port = await new Promise((resolve) => server.stdout.once("data", (d) => resolve(Number(String(d).trim()))));

const runs = [
  ["node", "node", [WORKER, join(ROOT, "dist", "node.js"), String(port)]],
  ["bun", join(BIN, "bun"), [WORKER, join(ROOT, "dist", "bun.js"), String(port)]],
  ["deno", join(BIN, "deno"), ["run", "-A", "--quiet", WORKER, join(ROOT, "mod.ts"), String(port)]],
];
const results = {};
for (const [name, cmd, args] of runs) {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) {
    console.log(`${name}: failed to run (${r.status}): ${r.stderr.trim().split("\n").pop()}`);
    continue;
  }
  results[name] = JSON.parse(r.stdout.trim().split("\n").pop());
}
server.kill();

const cases = Object.keys(results.node ?? Object.values(results)[0] ?? {});
console.log(`\nclient benchmark, ${new Date().toISOString()} (scripted server on loopback; ops/s, ratio to node)\n`);
for (const k of cases) {
  console.log(k);
  for (const [name, r] of Object.entries(results)) {
    const ratio = results.node ? ` (${(r[k] / results.node[k]).toFixed(2)}x node)` : "";
    console.log(`  ${name.padEnd(5)} ${Math.round(r[k]).toString().padStart(8)}${ratio}`);
  }
}
if (results.node) {
  const n = results.node;
  const seq = n["low-level acquire+release, sequential"];
  const pip = n["low-level acquire+release, 32 pipelined (per pair)"];
  const inst = n["DistributedLock acquire+release (new connection each)"];
  console.log(
    `\nnode: pipelining x${(pip / seq).toFixed(2)} over sequential; a DistributedLock cycle costs ${(seq / inst).toFixed(2)}x a low-level pair (it opens a connection)`,
  );
}
process.exit(0);
