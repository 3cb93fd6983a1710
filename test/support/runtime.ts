/**
 * Which runtime runs the tests, and how to start child processes and scripted
 * servers from any of them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

/** "node", "bun" or "deno": the runtime executing this test file. */
export const RUNTIME: "node" | "bun" | "deno" =
  (globalThis as { Deno?: unknown }).Deno !== undefined
    ? "deno"
    : (globalThis as { Bun?: unknown }).Bun !== undefined
      ? "bun"
      : "node";

export const ROOT: string = join(import.meta.dirname, "..", "..");

/** The command line that runs an ES module file with the current runtime. */
export function runFile(file: string): [string, string[]] {
  if (RUNTIME === "deno") return [process.execPath, ["run", "-A", "--quiet", file]];
  return [process.execPath, [file]];
}

/** A scripted fake server (test/support/scripted-server.mjs) in its own Node process. */
export interface ScriptedServer {
  port: number;
  stop(): void;
}

/** Start a scripted fake server for `scenario` in a separate `node` process. */
export async function scriptedServer(scenario: string): Promise<ScriptedServer> {
  const child: ChildProcess = spawn("node", [join(ROOT, "test", "support", "scripted-server.mjs"), scenario], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.stdout?.once("data", (d) => resolve(Number(String(d).trim())));
  });
  return {
    port,
    stop() {
      child.stdin?.end();
      child.kill("SIGKILL");
    },
  };
}
