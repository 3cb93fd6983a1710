/**
 * test/harness/process-end.ts: what the harness registers there is cleaned up
 * once the test process has ended, by itself, or by SIGTERM (as vitest ends
 * its workers) or SIGINT (Ctrl-C): the TLS test certificates' directory
 * (certs.ts) is gone, and so is a dflockd server process it started and did
 * not stop (dflockd.ts). Checked in a child process of the runtime under test.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { ROOT, RUNTIME, runTs } from "../support/runtime.ts";

const CHILD = join(ROOT, "test", "support", "process-end-child.ts");

/** What the child prints first (see process-end-child.ts). */
interface Printed {
  dir: string;
  pid?: number;
  listeners?: { SIGTERM: number; SIGINT: number };
}

/** Start the child with `args`: what it prints first, all it prints, and how it ends. */
async function startChild(args: string[]) {
  const [cmd, base] = await runTs(CHILD, args);
  const p = spawn(cmd, base, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let out = "";
  p.stdout.on("data", (d) => {
    stdout += d;
    out += d;
  });
  p.stderr.on("data", (d) => {
    out += d;
  });
  const ended = new Promise<[number | null, string | null]>((resolve) => {
    p.on("close", (code, sig) => resolve([code, sig]));
  });
  const printed = new Promise<Printed>((resolve, reject) => {
    p.stdout.on("data", () => {
      if (stdout.includes("\n")) resolve(JSON.parse(stdout.slice(0, stdout.indexOf("\n"))) as Printed);
    });
    p.on("close", () => reject(new Error(`the child printed nothing: ${out}`)));
  });
  return { p, printed, ended, out: () => out };
}

/**
 * Whether process `pid` has ended. A zombie has: it is only waiting for its
 * parent to collect it, and the server's parent (the child) is gone, so that
 * falls to PID 1, which in a container may never do it.
 */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] === "Z";
  } catch {
    return false;
  }
}

/** Wait up to `ms` for process `pid` to end: nothing here is told when another's child ends, so poll. */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!gone(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

it.each([
  ["ends by itself", undefined],
  ["is ended by SIGTERM", "SIGTERM"],
  ["is ended by SIGINT", "SIGINT"],
] as const)(`a ${RUNTIME} process that made the certificates %s: their directory is gone`, async (_name, signal) => {
  const child = await startChild(signal === undefined ? ["certs"] : ["certs", "wait"]);
  let dir = "";
  try {
    dir = (await child.printed).dir;
    expect(dir).toContain("dflockd-certs-");
    if (signal !== undefined) {
      expect(existsSync(join(dir, "server.key")), child.out()).toBe(true);
      child.p.kill(signal);
    }
    expect(await child.ended, child.out()).toEqual(signal === undefined ? [0, null] : [null, signal]);
    expect(existsSync(dir), `${dir} is left behind`).toBe(false);
  } finally {
    child.p.kill("SIGKILL");
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  }
});

it.each(["SIGTERM", "SIGINT"] as const)(
  `a ${RUNTIME} process that started a dflockd server and is ended by %s: the server is gone too`,
  async (signal) => {
    // The double as a process of its own (as bench/runner.ts starts it), so there is a process to outlive the child.
    const bun = join(ROOT, "node_modules", ".bin", "bun");
    const child = await startChild(["server", bun, join(ROOT, "test", "double", "cli.ts")]);
    let dir = "";
    let pid: number | undefined;
    try {
      const printed = await child.printed;
      dir = printed.dir;
      pid = printed.pid;
      expect(pid, child.out()).toBeTypeOf("number");
      if (pid === undefined) return;
      expect(gone(pid)).toBe(false);
      // One set of listeners, however many cleanups (here three).
      expect(printed.listeners).toEqual({ SIGTERM: 1, SIGINT: 1 });
      child.p.kill(signal);
      expect(await child.ended, child.out()).toEqual([null, signal]);
      expect(await goneWithin(pid, 5_000), `the server (pid ${pid}) outlived the process that started it`).toBe(true);
      // The cleanup registered first threw; the two after it still ran.
      expect(child.out()).toContain("a cleanup that throws");
      expect(existsSync(dir), `${dir} is left behind`).toBe(false);
    } finally {
      child.p.kill("SIGKILL");
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Gone, as it should be.
        }
      }
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    }
  },
);
