/**
 * The TLS test certificates' directory (test/harness/certs.ts) is gone once
 * the process that made it has ended: by itself, or by SIGTERM (as vitest ends
 * its workers) or SIGINT (Ctrl-C). Checked in a child process of the runtime
 * under test.
 */
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { ROOT, RUNTIME, runTs } from "../support/runtime.ts";

const CHILD = join(ROOT, "test", "support", "certs-child.ts");

it.each([
  ["ends by itself", undefined],
  ["is ended by SIGTERM", "SIGTERM"],
  ["is ended by SIGINT", "SIGINT"],
] as const)(`a ${RUNTIME} process that made the certificates %s: their directory is gone`, async (_name, signal) => {
  const [cmd, args] = await runTs(CHILD, signal === undefined ? [] : ["wait"]);
  const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (d) => {
    out += d;
  });
  p.stderr.on("data", (d) => {
    out += d;
  });
  const ended = new Promise<[number | null, string | null]>((resolve) => {
    p.on("close", (code, sig) => resolve([code, sig]));
  });
  // Its first line: the directory, printed once the certificates are made.
  const printed = new Promise<string>((resolve, reject) => {
    p.stdout.on("data", () => {
      if (out.includes("\n")) resolve(out.slice(0, out.indexOf("\n")));
    });
    p.on("close", () => reject(new Error(`the child printed no directory: ${out}`)));
  });
  let dir = "";
  try {
    dir = await printed;
    expect(dir).toContain("dflockd-certs-");
    if (signal !== undefined) {
      expect(existsSync(join(dir, "server.key")), out).toBe(true);
      p.kill(signal);
    }
    expect(await ended, out).toEqual(signal === undefined ? [0, null] : [null, signal]);
    expect(existsSync(dir), `${dir} is left behind`).toBe(false);
  } finally {
    p.kill("SIGKILL");
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  }
});
