/**
 * Test harness for the official Python client (PyPI `dflockd-client`): find a
 * Python >= 3.12 without changing anything global, and install the pinned
 * client into a virtualenv at .cache/python-venv (created once, then reused).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { delimiter, join } from "node:path";

const ROOT = join(import.meta.dirname as string, "..", ".."); // Deno types dirname as possibly undefined

/** The pinned Python client version (PyPI `dflockd-client`). */
export const PYTHON_CLIENT_VERSION = "2.1.1";

/** Where the virtualenv lives; `.cache/` is git-ignored. */
export const VENV_DIR = join(ROOT, ".cache", "python-venv");

const FIX =
  "Install Python 3.12 or newer (e.g. `pyenv install 3.12`, `apt-get install python3.12 python3.12-venv`, " +
  "or from python.org), or set DFLOCKD_PYTHON=/path/to/python3.12.";

/** A Python interpreter that was run and reported its version. */
export interface FoundPython {
  path: string;
  version: string;
  how: string;
}

/** Runs `path` to learn its version; returns why it is unusable as a string. */
function probe(path: string): { version: string; rank: number } | string {
  const code = "import sys; sys.stdout.write('%d.%d.%d %d' % (sys.version_info[:3] + (sys.hexversion,)))";
  const r = spawnSync(path, ["-c", code], { encoding: "utf8", timeout: 15_000 });
  if (r.error || r.status !== 0)
    return `does not run (${r.error?.message ?? (r.stderr.trim().split("\n")[0] || `exit ${r.status}`)})`;
  const [version = "?", hex = "0"] = r.stdout.trim().split(" ");
  return Number(hex) >= 0x030c0000 ? { version, rank: Number(hex) } : `is Python ${version}, older than 3.12`;
}

const skipped = (why: string[]) => (why.length ? `; skipped ${why.join(", ")}` : "");

/**
 * Finds a Python >= 3.12: $DFLOCKD_PYTHON if set; else the first of python3,
 * python3.13, python3.12 on PATH that runs and is new enough; else the newest
 * in pyenv's versions folder. Throws, saying how to fix it, if there is none.
 */
export function findPython(): FoundPython {
  const env = process.env.DFLOCKD_PYTHON;
  if (env) {
    const p = probe(env);
    if (typeof p === "string") throw new Error(`DFLOCKD_PYTHON=${env} ${p}. ${FIX}`);
    return { path: env, version: p.version, how: "from $DFLOCKD_PYTHON" };
  }
  const rejected: string[] = [];
  for (const name of ["python3", "python3.13", "python3.12"]) {
    for (const dir of (process.env.PATH ?? "").split(delimiter)) {
      const path = dir ? join(dir, name) : "";
      if (!path || !existsSync(path)) continue;
      const p = probe(path);
      if (typeof p !== "string") return { path, version: p.version, how: `'${name}' on PATH${skipped(rejected)}` };
      rejected.push(`${path} ${p}`);
      break; // only the first match on PATH is what a shell would run
    }
  }
  const onPath = rejected.length;
  const pyenv = spawnSync("pyenv", ["root"], { encoding: "utf8", timeout: 15_000 });
  const roots = new Set([pyenv.status === 0 ? pyenv.stdout.trim() : "", join(homedir(), ".pyenv")]);
  let best: (FoundPython & { rank: number }) | undefined;
  for (const versions of [...roots].filter(Boolean).map((r) => join(r, "versions"))) {
    if (!existsSync(versions)) continue;
    for (const v of readdirSync(versions).sort()) {
      const path = join(versions, v, "bin", "python3");
      if (!existsSync(path)) continue;
      const p = probe(path);
      if (typeof p === "string") rejected.push(`${path} ${p}`);
      else if (!best || p.rank > best.rank) best = { path, ...p, how: `newest in pyenv's ${versions}` };
    }
  }
  if (best) return { path: best.path, version: best.version, how: best.how + skipped(rejected.slice(0, onPath)) };
  throw new Error(`No Python >= 3.12 found. Tried: ${rejected.join("; ") || "nothing on PATH or in pyenv"}. ${FIX}`);
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    for (const s of [child.stdout, child.stderr]) s.on("data", (d) => (out += d));
    child.on("error", (e) => resolve({ code: -1, out: `${out}${e.message}` }));
    child.on("close", (code) => resolve({ code, out }));
  });
}

const venvPython = join(VENV_DIR, ...(process.platform === "win32" ? ["Scripts", "python.exe"] : ["bin", "python"]));
const marker = join(VENV_DIR, "dflockd-ready.json");
const ready = (base: FoundPython): boolean => {
  try {
    const m = JSON.parse(readFileSync(marker, "utf8")) as { pin?: string; base?: string };
    return m.pin === PYTHON_CLIENT_VERSION && m.base === base.path && typeof probe(venvPython) !== "string";
  } catch {
    return false; // no marker yet: not (fully) installed
  }
};

/** A lock is stale if its owner (on this host) has died, or it is over 15 minutes old. */
function stale(lock: string): boolean {
  try {
    const age = Date.now() - statSync(lock).mtimeMs;
    const owner = join(lock, "owner");
    if (!existsSync(owner)) return age > 10_000; // the owner writes this right after mkdir
    const [host, pid] = readFileSync(owner, "utf8").split(" ");
    if (host === hostname()) process.kill(Number(pid), 0);
    return age > 15 * 60_000;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** Holds `.cache/python-venv.lock` (an atomic mkdir) while `fn` runs, so overlapping runs build the venv once. */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = `${VENV_DIR}.lock`;
  mkdirSync(join(ROOT, ".cache"), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "owner"), `${hostname()} ${process.pid}`);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if (stale(lock)) rmSync(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Makes sure .cache/python-venv holds `dflockd-client==PYTHON_CLIENT_VERSION`
 * (creating it under a lock if needed) and returns the venv's python plus a
 * line describing which Python was found, how, and whether the venv was reused.
 */
export async function ensurePythonClient(): Promise<{ python: string; description: string }> {
  const base = findPython();
  const describe = (what: string) =>
    `Python ${base.version} at ${base.path} (${base.how}); ${what} venv ${VENV_DIR} with dflockd-client==${PYTHON_CLIENT_VERSION}`;
  if (ready(base)) return { python: venvPython, description: describe("reused") };
  return withLock(async () => {
    if (ready(base)) return { python: venvPython, description: describe("reused") };
    rmSync(VENV_DIR, { recursive: true, force: true });
    const venv = await run(base.path, ["-m", "venv", VENV_DIR]);
    if (venv.code !== 0) throw new Error(`'${base.path} -m venv' failed:\n${venv.out.slice(-2000)}\n${FIX}`);
    const spec = `dflockd-client==${PYTHON_CLIENT_VERSION}`;
    const pip = await run(venvPython, ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", spec]);
    if (pip.code !== 0) {
      throw new Error(
        `'pip install ${spec}' into ${VENV_DIR} failed:\n${pip.out.slice(-2000)}\n` +
          "Check network access to PyPI (or set PIP_INDEX_URL to a mirror), then rerun; or set DFLOCKD_PYTHON to another Python >= 3.12.",
      );
    }
    writeFileSync(marker, JSON.stringify({ pin: PYTHON_CLIENT_VERSION, base: base.path }));
    return { python: venvPython, description: describe("created") };
  });
}
