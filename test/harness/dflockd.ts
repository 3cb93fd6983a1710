/**
 * Test harness for a real dflockd server: find (or install) the binary, start
 * servers on free ports with the flags a test needs, and always stop them.
 *
 * The pinned server version lives in one place: package.json → config.dflockdVersion.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..");
const MODULE = "github.com/mtingers/dflockd/cmd/dflockd";

/** The pinned dflockd version, e.g. "v1.16.1". */
export function pinnedVersion(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { config?: { dflockdVersion?: string } };
  const v = pkg.config?.dflockdVersion;
  if (!v) throw new Error("package.json has no config.dflockdVersion");
  return v;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function goEnv(name: string): string | undefined {
  const r = spawnSync("go", ["env", name], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

/**
 * Locate the server: $DFLOCKD_BIN, then PATH, then Go's bin folder, then
 * ../shared/bin/dflockd; otherwise `go install` the pinned version into
 * .cache/ (saying so). Throws with a
 * message that says how to fix things if none of that works.
 */
export function findDflockd(log: (msg: string) => void = (m) => process.stderr.write(`${m}\n`)): string {
  const fromEnv = process.env.DFLOCKD_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`DFLOCKD_BIN=${fromEnv} does not exist`);
    return fromEnv;
  }
  const version = pinnedVersion();
  const cached = join(ROOT, ".cache", "dflockd", version, "dflockd");
  if (existsSync(cached)) return cached;
  const found = onPath("dflockd");
  if (found) return found;
  const gobin = goEnv("GOBIN") ?? (goEnv("GOPATH") ? join(goEnv("GOPATH") as string, "bin") : undefined);
  if (gobin && existsSync(join(gobin, "dflockd"))) return join(gobin, "dflockd");
  // The workplace's shared/ folder beside the checkout, where a prebuilt server can be provided.
  const shared = join(ROOT, "..", "shared", "bin", "dflockd");
  if (existsSync(shared)) return shared;

  const dir = join(ROOT, ".cache", "dflockd", version);
  mkdirSync(dir, { recursive: true });
  log(`dflockd not found; installing ${MODULE}@${version} into ${dir} with 'go install' ...`);
  const r = spawnSync("go", ["install", `${MODULE}@${version}`], {
    env: { ...process.env, GOBIN: dir },
    encoding: "utf8",
    timeout: 600_000,
  });
  if (r.error || r.status !== 0 || !existsSync(cached)) {
    throw new Error(
      [
        `could not install dflockd ${version}: ${r.error?.message ?? r.stderr.trim()}`,
        "Fix: install Go (>= 1.23) with access to the Go module proxy, or build dflockd yourself and",
        "set DFLOCKD_BIN=/path/to/dflockd, or put dflockd on PATH.",
      ].join("\n"),
    );
  }
  log(`installed dflockd ${version}`);
  return cached;
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

/** A running dflockd. */
export interface DflockdServer {
  readonly host: string;
  readonly port: number;
  /** `[host, port]`, ready for the `servers` option. */
  readonly address: [string, number];
  /** Everything the server printed. */
  output(): string;
  /** SIGTERM, then SIGKILL after 3 s; resolves when the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL at once; resolves when the process has exited. */
  kill(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/**
 * Start a dflockd on a free loopback port with `flags`, with every inherited
 * DFLOCKD_* variable removed, and wait until it accepts connections.
 */
export async function startDflockd(flags: string[] = [], bin: string = findDflockd()): Promise<DflockdServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(bin, port, flags);
    } catch (err) {
      // Another process may have taken the port between probe and bind.
      if (attempt >= 3) throw err;
    }
  }
}

async function launch(bin: string, port: number, flags: string[]): Promise<DflockdServer> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("DFLOCKD_")) env[k] = v;
  const host = "127.0.0.1";
  const child = spawn(bin, ["--host", host, "--port", String(port), ...flags], {
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
  const kill = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return {
    host,
    port,
    address: [host, port],
    output: () => out,
    kill: () => kill("SIGKILL"),
    async stop() {
      const t = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await kill("SIGTERM");
      clearTimeout(t);
    },
  };
}

/** Start `n` servers with the same flags. */
export function startDflockds(n: number, flags: string[] = []): Promise<DflockdServer[]> {
  const bin = findDflockd();
  return Promise.all(Array.from({ length: n }, () => startDflockd(flags, bin)));
}
