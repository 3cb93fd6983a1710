/**
 * The abandoned-holding warning under a real garbage collector, on the
 * runtime under test: a child process (test/support/abandoned-child.ts, with
 * the collector exposed) holds locks against this file's server, drops what
 * it keeps for some of them, and forces collection until it is told
 * (bounded). Each dropped holding is reported once, through `hooks.abandoned`
 * and `console.warn`, naming its key, and goes on being held; nothing is said
 * of a holding whose object is kept, released, or of a `withLock()` still
 * running. The control `self` (an instance its own `onLost` refers to, which
 * the client keeps while it holds) shows what a client that kept its
 * instances alive would look like: no warning at all, which fails this test.
 * A `hold()` scope that `maxHoldS` ended, whose `HeldLock` is then dropped
 * unreleased, gives its instance's turn up once that `HeldLock` is collected:
 * the instance's next `withLock()` runs.
 */
import { join } from "node:path";
import { expect, it } from "vitest";
import type { AbandonedEvent } from "../support/client.ts";
import { ROOT, RUNTIME, runChild, runTs } from "../support/runtime.ts";
import { key, useDflockd } from "./helpers.ts";

const server = useDflockd();
const CHILD = join(ROOT, "test", "support", "abandoned-child.ts");

/** The child's command line, with the garbage collector exposed to it. */
async function childCommand(args: string[]): Promise<[string, string[]]> {
  const [cmd, argv] = await runTs(CHILD, args);
  if (RUNTIME === "node") return [cmd, ["--expose-gc", ...argv]];
  if (RUNTIME === "deno") return [cmd, [argv[0] as string, "--v8-flags=--expose-gc", ...argv.slice(1)]];
  return [cmd, argv];
}

interface Report {
  events: AbandonedEvent[];
  warnings: string[];
  held: string[];
  rounds: number;
  afterLoss: string | undefined;
}

it(`warns once per holding whose object is collected unreleased, on ${RUNTIME}`, async () => {
  const prefix = key("gc");
  const [cmd, args] = await childCommand([server().host, String(server().port), prefix]);
  const r = await runChild(cmd, args, { timeout: 60_000 });
  expect(r.code, r.err).toBe(0);
  const report = JSON.parse(r.out.trim().split("\n").pop() as string) as Report;
  const k = (name: string): string => `${prefix}-${name}`;
  const server0 = `${server().host}:${server().port}`;

  // One event per dropped holding, for no other.
  const byKey = [...report.events].sort((a, b) => a.key.localeCompare(b.key));
  expect(byKey, `after ${report.rounds} rounds`).toEqual([
    { key: k("drop-again"), server: server0, object: "DistributedLock", maxHoldS: undefined },
    { key: k("drop-all-a"), server: server0, object: "HeldLock", maxHoldS: undefined },
    { key: k("drop-all-b"), server: server0, object: "HeldLock", maxHoldS: undefined },
    { key: k("drop-held"), server: server0, object: "HeldLock", maxHoldS: undefined },
    { key: k("drop-lock"), server: server0, object: "DistributedLock", maxHoldS: undefined },
    { key: k("drop-reopened"), server: server0, object: "DistributedLock", maxHoldS: undefined },
    { key: k("drop-sem"), server: server0, object: "DistributedSemaphore", maxHoldS: 600 },
    { key: k("drop-waited"), server: server0, object: "DistributedLock", maxHoldS: undefined },
  ]);
  // One console.warn for each, naming the key and the fix.
  expect(report.warnings).toHaveLength(8);
  const dropped = ["drop-lock", "drop-sem", "drop-held", "drop-all-a", "drop-all-b", "drop-again", "drop-reopened"];
  for (const name of [...dropped, "drop-waited"]) {
    const lines = report.warnings.filter((w) => w.includes(`"${k(name)}"`));
    expect(lines, name).toHaveLength(1);
    expect(lines[0]).toMatch(/garbage-collected without being released/);
    expect(lines[0]).toMatch(/set maxHoldS/);
  }
  expect(report.warnings.find((w) => w.includes(k("drop-sem")))).toContain("until its maxHoldS of 600 s");
  // The holdings go on (nothing released them quietly); the released one is gone.
  for (const name of [...dropped, "drop-waited", "keep", "self"]) expect(report.held).toContain(k(name));
  expect(report.held).not.toContain(k("released"));
  expect(report.held).not.toContain(k("released-twice"));
  // The dropped scope that maxHoldS ended gave the turn up: the next withLock() ran; the lock is not held.
  expect(report.afterLoss).toBe("ran");
  expect(report.held).not.toContain(k("lost-held"));
});
