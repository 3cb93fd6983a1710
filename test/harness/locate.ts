/**
 * Where is a real dflockd? Looks, in order, at $DFLOCKD_BIN, the cache of an
 * earlier `go install`, `dflockd` on PATH, Go's bin folder, and
 * ../shared/bin/dflockd beside the checkout; then tries `go install` of the
 * pinned version (package.json → config.dflockdVersion) into .cache/. Says
 * where it looked, so a test run can report plainly which server it used.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
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

/** A real server binary and how it was found, or why none was. */
export type Located = { bin: string; how: string } | { bin: undefined; why: string };

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
 * Find a real dflockd without installing anything; `install: true` also
 * tries `go install` (about a second when the module proxy refuses it).
 */
export function locateDflockd(options: { install?: boolean } = {}): Located {
  const fromEnv = process.env.DFLOCKD_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) return { bin: undefined, why: `DFLOCKD_BIN=${fromEnv} does not exist` };
    return { bin: fromEnv, how: "$DFLOCKD_BIN" };
  }
  const version = pinnedVersion();
  const dir = join(ROOT, ".cache", "dflockd", version);
  const cached = join(dir, "dflockd");
  if (existsSync(cached)) return { bin: cached, how: `go install ${version} (cached in .cache/)` };
  const found = onPath("dflockd");
  if (found) return { bin: found, how: "PATH" };
  const gopath = goEnv("GOPATH");
  const gobin = goEnv("GOBIN") ?? (gopath ? join(gopath, "bin") : undefined);
  if (gobin && existsSync(join(gobin, "dflockd"))) return { bin: join(gobin, "dflockd"), how: "Go's bin folder" };
  const shared = join(ROOT, "..", "shared", "bin", "dflockd");
  if (existsSync(shared)) return { bin: shared, how: "../shared/bin/dflockd" };
  const looked = "not in $DFLOCKD_BIN, PATH, Go's bin folder or ../shared/bin";
  if (!options.install) return { bin: undefined, why: looked };

  mkdirSync(dir, { recursive: true });
  const r = spawnSync("go", ["install", `${MODULE}@${version}`], {
    env: { ...process.env, GOBIN: dir },
    encoding: "utf8",
    timeout: 300_000,
  });
  if (!r.error && r.status === 0 && existsSync(cached)) return { bin: cached, how: `go install ${version}` };
  const err = r.error?.message ?? (r.stderr ?? "").trim().split("\n").pop()?.trim();
  return { bin: undefined, why: `${looked}; 'go install ${MODULE}@${version}' failed: ${err}` };
}

/** How to point the harness at a server, for messages. */
export const HOW_TO_FIX =
  "Fix: set DFLOCKD_BIN=/path/to/dflockd (a dflockd you built), put dflockd on PATH, or give Go access to the module proxy.";
