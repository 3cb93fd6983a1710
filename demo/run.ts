/**
 * `npm run demo`: start a local dflockd (a real one if the test harness finds
 * one, else the in-process double, saying which on the first line), run three
 * workers at once on Node, Bun and Deno contending for one lock and one
 * semaphore, and print who held what, when, then how to get a server of your
 * own. Run with Bun (a dev dependency).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { chooseServer, describeChoice, pinnedVersion, startDflockd } from "../test/harness/dflockd.ts";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "node_modules", ".bin");
const WORKER = join(ROOT, "demo", "worker.mjs");

interface Event {
  at: number;
  worker: string;
  event: string;
  round?: number;
  status?: string;
}

const choice = chooseServer();
console.log(`server: ${describeChoice(choice)}`);
const server = await startDflockd([], choice.kind === "real" ? { bin: choice.bin } : "double");
console.log(`dflockd listening on ${server.host}:${server.port}\n`);

const workers: Array<[string, string, string[]]> = [
  ["node", "node", [WORKER, "node", join(ROOT, "dist", "node.js")]],
  ["bun", join(BIN, "bun"), [WORKER, "bun", join(ROOT, "dist", "bun.js")]],
  ["deno", join(BIN, "deno"), ["run", "-A", "--quiet", WORKER, "deno", join(ROOT, "mod.ts")]],
];

const events: Event[] = [];
let failed = false;
try {
  await Promise.all(
    workers.map(
      ([name, cmd, args]) =>
        new Promise<void>((resolve) => {
          const child = spawn(cmd, [...args, String(server.port)], { stdio: ["ignore", "pipe", "inherit"] });
          let buf = "";
          child.stdout.on("data", (d: Buffer) => {
            buf += d.toString();
            const lines = buf.split("\n");
            buf = lines.pop() ?? "";
            for (const l of lines) if (l.trim()) events.push(JSON.parse(l) as Event);
          });
          child.on("exit", (code) => {
            if (code !== 0) {
              console.error(`worker ${name} exited with ${code}`);
              failed = true;
            }
            resolve();
          });
        }),
    ),
  );
} finally {
  await server.stop();
}

events.sort((a, b) => a.at - b.at);
const t0 = events[0]?.at ?? 0;
for (const e of events) {
  const ms = String(e.at - t0).padStart(5);
  const detail = e.round !== undefined ? ` (round ${e.round}${e.status ? `, ${e.status}` : ""})` : "";
  console.log(`${ms} ms  ${e.worker.padEnd(5)} ${e.event}${detail}`);
}

// FIFO: the lock is granted in the order the workers queued for it.
const queued = events.filter((e) => e.event === "lock: queued").map((e) => `${e.worker}#${e.round}`);
const held = events.filter((e) => e.event === "lock: HELD").map((e) => `${e.worker}#${e.round}`);
console.log(`\nqueued: ${queued.join(" → ")}\nheld:   ${held.join(" → ")}`);
console.log("dflockd stopped.");
console.log(
  [
    "\nA server of your own, in one command:",
    "  npx dflockd-client serve    (bunx --bun dflockd-client serve; deno run -A jsr:@dflockd/client/cli serve)",
    "or the real dflockd:",
    `  go install github.com/mtingers/dflockd/cmd/dflockd@${pinnedVersion()} && dflockd`,
  ].join("\n"),
);
process.exit(failed ? 1 : 0);
