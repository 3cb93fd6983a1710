/**
 * Test harness for dflockd servers: start one on a free port with the flags a
 * test needs, and always stop it. The server is a real dflockd when the run
 * uses one (see locate.ts and global-setup.ts), else the in-process double
 * (the shipped server in src/server, started by test/double/server.ts), which
 * takes the same flags.
 *
 * `DFLOCKD_SERVER` chooses: `double`, `real` (fails if none is found), or
 * `auto` (real if found, else the double). The global setup resolves it once
 * per run into `DFLOCKD_SERVER_RESOLVED` ("double" or the real binary's path).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import type { DoubleOptions } from "../double/server.ts";
import { startDouble } from "../double/server.ts";
import { HOW_TO_FIX, type Located, locateDflockd } from "./locate.ts";
import { onProcessEnd } from "./process-end.ts";

export { pinnedVersion } from "./locate.ts";

/** Which server a run uses: the double, or a real binary and how it was found. */
export type ServerChoice = { kind: "double"; why: string } | { kind: "real"; bin: string; how: string };

/**
 * Resolve `DFLOCKD_SERVER` (default `auto`) into a choice. `located` is what
 * the locator found (looked up here when not given).
 */
export function chooseServer(located: Located = locateDflockd({ install: true })): ServerChoice {
  const want = process.env.DFLOCKD_SERVER ?? "auto";
  if (want === "double") return { kind: "double", why: "DFLOCKD_SERVER=double" };
  if (want !== "auto" && want !== "real") {
    throw new Error(`DFLOCKD_SERVER=${want}: expected double, real or auto`);
  }
  if (located.bin !== undefined) return { kind: "real", bin: located.bin, how: located.how };
  if (want === "real")
    throw new Error(`DFLOCKD_SERVER=real but no real dflockd was found: ${located.why}\n${HOW_TO_FIX}`);
  return { kind: "double", why: `no real dflockd: ${located.why}` };
}

/** One line for logs: which server this run uses. */
export function describeChoice(c: ServerChoice): string {
  return c.kind === "real"
    ? `REAL dflockd ${c.bin} (found via ${c.how})`
    : `the in-process dflockd DOUBLE answering as dflockd ${process.env.DFLOCKD_DOUBLE_VERSION ?? "1.10"} (src/server, the server startTestServer() ships; ${c.why})`;
}

/** The choice the global setup made for this run ("double" unless told otherwise). */
export function currentServer(): "double" | { bin: string } {
  const r = process.env.DFLOCKD_SERVER_RESOLVED;
  if (r === undefined || r === "" || r === "double") return "double";
  return { bin: r };
}

/** Ask the OS for a free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** A running dflockd, real or double. */
export interface DflockdServer {
  /** Which kind of server this is. */
  readonly kind: "real" | "double";
  readonly host: string;
  readonly port: number;
  /** `[host, port]`, ready for the `servers` option. */
  readonly address: [string, number];
  /** The server's process id; undefined for the in-process double. */
  readonly pid: number | undefined;
  /** Everything the server printed. */
  output(): string;
  /** Begin a graceful shutdown, as SIGTERM does (a real server gets SIGTERM); does not wait. */
  shutdown(): void;
  /** SIGTERM, then SIGKILL after 3 s; resolves when the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL at once; resolves when the process has exited. */
  kill(): Promise<void>;
}

/** Server processes started and not yet exited: killed when this process ends, so none outlives it. */
const running = new Set<ChildProcess>();
onProcessEnd(() => {
  for (const p of running) signalChild(p, "SIGKILL");
});

/**
 * Send `sig` to `child` unless it has exited. Through process.kill(), not child.kill(): Deno's ignores every call
 * after the first (a SIGKILL after a SIGTERM would never come).
 */
function signalChild(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(child.pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * Start a dflockd with `flags` (real-server flags; the double takes the same):
 * the run's server (see {@link currentServer}) unless `server` says which.
 * `double` options set the reply forms of newer servers on the double only
 * (on top of v1.10.0's, whatever DFLOCKD_DOUBLE_VERSION says).
 */
export async function startDflockd(
  flags: string[] = [],
  server: "double" | { bin: string; args?: string[] } = currentServer(),
  double: DoubleOptions = {},
): Promise<DflockdServer> {
  if (server === "double") {
    // Forms given here describe one build (a recording's, or a test's own): DFLOCKD_DOUBLE_VERSION must not add to them.
    const pinned = Object.keys(double).length > 0 ? ["--server-version", "1.10"] : [];
    const d = await startDouble(["--host", "127.0.0.1", ...pinned, ...flags], double);
    return { kind: "double", ...d, pid: undefined, shutdown: () => d.drain(), output: () => "" };
  }
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(server.bin, port, flags, server.args ?? []);
    } catch (err) {
      // Another process may have taken the port between probe and bind.
      if (attempt >= 3) throw err;
    }
  }
}

/** Run `bin` (with `args` first: e.g. the double's cli.ts under Bun) as a server on `port`. */
async function launch(bin: string, port: number, flags: string[], args: string[]): Promise<DflockdServer> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("DFLOCKD_")) env[k] = v;
  const host = "127.0.0.1";
  const child = spawn(bin, [...args, "--host", host, "--port", String(port), ...flags], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let out = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  exited.then(() => running.delete(child));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`dflockd did not report listening within 10 s:\n${out}`));
    }, 10_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (/listening/i.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`dflockd exited early (code ${code}, signal ${signal}):\n${out}`));
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  const signal = (sig: NodeJS.Signals): void => signalChild(child, sig);
  const kill = async (sig: NodeJS.Signals): Promise<void> => {
    signal(sig);
    await exited;
  };
  return {
    kind: args.length === 0 ? "real" : "double",
    host,
    port,
    address: [host, port],
    pid: child.pid,
    output: () => out,
    shutdown: () => signal("SIGTERM"),
    kill: () => kill("SIGKILL"),
    async stop() {
      const t = setTimeout(() => signal("SIGKILL"), 3_000);
      await kill("SIGTERM");
      clearTimeout(t);
    },
  };
}

/** Start `n` servers with the same flags. */
export function startDflockds(n: number, flags: string[] = []): Promise<DflockdServer[]> {
  return Promise.all(Array.from({ length: n }, () => startDflockd(flags)));
}
