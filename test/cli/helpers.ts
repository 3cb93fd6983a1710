/**
 * Running the `dflockd-client` command line as a child process, with the
 * runtime that runs the tests: Node runs a bundle of cli.ts (what `npx` runs
 * is the same bundle, built by tsup), Bun runs cli.ts itself, and Deno runs
 * cli.ts with the least permissions docs/cli.md documents (its "Deno
 * permissions"), so a permission the command line needs and the docs do not
 * list fails the test.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { nodeBundle, ROOT, RUNTIME } from "../support/runtime.ts";

const CLI = join(ROOT, "cli.ts");
/** Deno permissions for one run: the least that docs/cli.md documents. */
export interface DenoPermissions {
  /** `host:port` of each server (`--allow-net=`). */
  net: string[];
  /** Commands the run starts (`--allow-run=`). */
  run?: string[];
  /** Files the options name (`--allow-read=`). */
  read?: string[];
  /** `false`: no `--allow-env`; a list: those variables (default: the two DFLOCKD_ variables); `"all"`: a plain `--allow-env`. */
  env?: boolean | string[] | "all";
}

/** How one run of the command line ended, and what it printed. */
export interface CliRun {
  readonly child: ChildProcess;
  /** Resolves when the process has exited (not waiting for its output pipes). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  out(): string;
  err(): string;
  /**
   * Send `signal` to the CLI process. Through `process.kill`, not
   * `child.kill`: after `child.kill`, Deno's node:child_process reports the
   * signal as the way the process ended even when it exited with a code.
   */
  signal(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited and its output pipes are drained. */
  readonly closed: Promise<void>;
  /** Resolves when standard output has printed `text`; rejects if it ends without. */
  printed(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves with the match once standard error matches `pattern`; rejects if it ends without. */
  logged(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** Options of one run. */
export interface CliOptions {
  /** Environment on top of this process's (minus every DFLOCKD_ variable). */
  env?: Record<string, string>;
  /** Deno permissions (required under Deno). */
  deno?: DenoPermissions;
  /** A file descriptor for the child's standard output instead of a pipe. */
  stdoutFd?: number;
}

/** The command line that runs the CLI with this runtime and `args`. */
export async function cliCommand(args: string[], deno?: DenoPermissions): Promise<[string, string[]]> {
  if (RUNTIME === "node") return [process.execPath, [await nodeBundle(CLI), ...args]];
  if (RUNTIME === "bun") return [process.execPath, [CLI, ...args]];
  const perms = ["--no-prompt"];
  const env = deno?.env === undefined || deno.env === true ? ["DFLOCKD_SERVERS", "DFLOCKD_AUTH_TOKEN"] : deno.env || [];
  if (env === "all") perms.push("--allow-env");
  else if (env.length > 0) perms.push(`--allow-env=${env.join(",")}`);
  if (deno?.net?.length) perms.push(`--allow-net=${deno.net.join(",")}`);
  if (deno?.run?.length) perms.push(`--allow-run=${deno.run.join(",")}`);
  if (deno?.read?.length) perms.push(`--allow-read=${deno.read.join(",")}`);
  return [process.execPath, ["run", "--quiet", ...perms, CLI, ...args]];
}

/** Start the CLI with `args`; see {@link CliRun}. */
export async function startCli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const [cmd, argv] = await cliCommand(args, options.deno);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("DFLOCKD_")) env[k] = v;
  Object.assign(env, options.env);
  const t0 = performance.now();
  const child = spawn(cmd, argv, { env, stdio: ["ignore", options.stdoutFd ?? "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiters = new Set<() => void>();
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve({ code, signal, ms: performance.now() - t0 }));
  });
  // "close": the process has exited and its output pipes are drained; nothing more will come.
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  /** Resolves with what `found` finds in the output so far, once it finds something. */
  const until = <T>(found: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = found();
        if (hit === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const fail = (why: string): void => {
        waiters.delete(check);
        clearTimeout(timer);
        reject(new Error(`the CLI did not ${what} ${why}; out:\n${out}\nerr:\n${err}`));
      };
      const timer = setTimeout(() => fail(`within ${timeoutMs} ms`), timeoutMs);
      waiters.add(check);
      check();
      closed.then(() => {
        check();
        if (waiters.has(check)) fail("before it exited");
      });
    });
  return {
    child,
    exited,
    closed,
    out: () => out,
    err: () => err,
    signal(signal) {
      if (child.pid !== undefined) process.kill(child.pid, signal);
    },
    async printed(text, timeoutMs = 30_000) {
      await until(() => (out.includes(text) ? true : undefined), `print ${JSON.stringify(text)}`, timeoutMs);
    },
    logged(pattern, timeoutMs = 30_000) {
      return until(() => err.match(pattern) ?? undefined, `log ${pattern}`, timeoutMs);
    },
  };
}

/** Run the CLI to its end. */
export async function runCli(
  args: string[],
  options: CliOptions = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; out: string; err: string }> {
  const run = await startCli(args, options);
  const end = await run.exited;
  await run.closed; // none of these commands leaves a grandchild holding the pipes
  return { ...end, out: run.out(), err: run.err() };
}
