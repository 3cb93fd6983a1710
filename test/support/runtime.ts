/**
 * Which runtime runs the tests, and how to start child processes and scripted
 * servers from any of them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";

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

const bundles = new Map<string, Promise<string>>();

/**
 * Node 20 runs no TypeScript: `entry` and everything it imports (the library
 * included), bundled with esbuild into `.test-tmp`, once per process.
 * @returns The bundle's path.
 */
export function nodeBundle(entry: string): Promise<string> {
  let bundle = bundles.get(entry);
  if (bundle === undefined) {
    bundle = (async () => {
      const { build } = await import("esbuild");
      const dir = join(ROOT, ".test-tmp");
      mkdirSync(dir, { recursive: true });
      const out = join(dir, `${basename(entry).replace(/\.ts$/, "")}-${process.pid}.mjs`);
      await build({
        entryPoints: [entry],
        bundle: true,
        platform: "node",
        format: "esm",
        outfile: out,
        logLevel: "error",
      });
      return out;
    })();
    bundles.set(entry, bundle);
  }
  return bundle;
}

/** The command line that runs the TypeScript file `entry` with the runtime under test (on Node, its bundle). */
export async function runTs(entry: string, args: string[] = []): Promise<[string, string[]]> {
  const [cmd, base] = runFile(RUNTIME === "node" ? await nodeBundle(entry) : entry);
  return [cmd, [...base, ...args]];
}

/** A scripted fake server (test/support/scripted-server.mjs) in its own Node process. */
export interface ScriptedServer {
  port: number;
  /** Write a line to the server's stdin (the "deaf" scenario resumes reading on "resume"). */
  tell(line: string): void;
  stop(): void;
}

/** Options of a scripted fake server. */
export interface ScriptedOptions {
  /** Serve TLS with these PEM files. */
  tls?: { certFile: string; keyFile: string };
  /** Require this auth secret first. */
  auth?: string;
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
}

/** Start a scripted fake server for `scenario` in a separate `node` process. */
export async function scriptedServer(scenario: string, options: ScriptedOptions = {}): Promise<ScriptedServer> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.tls) {
    env.SCRIPTED_TLS_CERT = options.tls.certFile;
    env.SCRIPTED_TLS_KEY = options.tls.keyFile;
  }
  if (options.auth !== undefined) env.SCRIPTED_AUTH = options.auth;
  if (options.host !== undefined) env.SCRIPTED_HOST = options.host;
  const child: ChildProcess = spawn("node", [join(ROOT, "test", "support", "scripted-server.mjs"), scenario], {
    stdio: ["pipe", "pipe", "inherit"],
    env,
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.stdout?.once("data", (d) => resolve(Number(String(d).trim())));
  });
  return {
    port,
    tell(line) {
      child.stdin?.write(`${line}\n`);
    },
    stop() {
      child.stdin?.end();
      child.kill("SIGKILL");
    },
  };
}

/** What a finished child process printed, and how it ended. */
export interface ChildResult {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Run a child process to its end without blocking this process's event loop
 * (an in-process server may need to answer it).
 */
export function runChild(
  cmd: string,
  args: string[],
  options: { cwd?: string; timeout?: number } = {},
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, out, err }));
  });
}

/** A small seeded generator (mulberry32): the same seed gives the same sequence on every run and runtime. */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
