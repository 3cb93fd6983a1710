/**
 * What the command learns of its lock (environment), how long it waits
 * (`--timeout` with units, `--wait`, `--conflict-exit-code`), and `lock KEY`
 * without a command: through the command line as a child process of the
 * runtime under test.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { currentServer, type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { elapse, key, until, useDflockd } from "../integration/helpers.ts";
import { DistributedLock, DistributedSemaphore, stats } from "../support/client.ts";
import { RUNTIME } from "../support/runtime.ts";
import { type DenoPermissions, runCli, startCli } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "dflockd-cli-holding-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A child command that prints what it was told, one variable a line (`unset` for an absent one). */
const PRINT_ENV = [
  "sh",
  "-c",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell's parameter expansion, not a template
  'for v in DFLOCKD_KEY DFLOCKD_SERVER DFLOCKD_FENCE DFLOCKD_LEASE; do eval "echo $v=\\${$v-unset}"; done; env',
];

/** The variables a child printed with {@link PRINT_ENV}. */
function told(out: string): Record<string, string> {
  const lines = out.split("\n");
  return Object.fromEntries(lines.slice(0, 4).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

/** The names of the DFLOCKD_ variables in a child's whole environment (PRINT_ENV's `env` part). */
function dflockdNames(out: string): string[] {
  return out
    .split("\n")
    .slice(4)
    .filter((l) => l.startsWith("DFLOCKD_"))
    .map((l) => l.slice(0, l.indexOf("=")))
    .sort();
}

describe(`dflockd-client: the command's environment (${RUNTIME})`, () => {
  const server = useDflockd();
  const where = () => `127.0.0.1:${server().port}`;
  const deno = (): DenoPermissions => ({ net: [where()], run: ["sh"] });

  it("names key, server and lease; a fence inherited from outside is not passed on as ours", async () => {
    const k = key();
    const r = await runCli(["lock", k, "--lease", "7", "--", ...PRINT_ENV], {
      env: { DFLOCKD_SERVERS: where(), DFLOCKD_FENCE: "999" },
      deno: deno(),
    });
    expect(r.code).toBe(0);
    const seen = told(r.out);
    expect(seen).toMatchObject({ DFLOCKD_KEY: k, DFLOCKD_SERVER: where(), DFLOCKD_LEASE: "7" });
    // The server's fence where it sends one (later builds); else none. Without a plain --allow-env,
    // Deno cannot drop a variable it may not read, so it empties it.
    const none = RUNTIME === "deno" ? "" : "unset";
    const fence = seen.DFLOCKD_FENCE as string;
    expect(/^\d+$/.test(fence) || fence === none).toBe(true);
    expect(fence).not.toBe("999");
    // Nothing else of ours: no token variable, nothing but what the test itself passed.
    const names = ["DFLOCKD_KEY", "DFLOCKD_LEASE", "DFLOCKD_SERVER", "DFLOCKD_SERVERS"];
    if (fence !== "unset") names.push("DFLOCKD_FENCE");
    expect(dflockdNames(r.out)).toEqual(names.sort());
    if (RUNTIME === "deno" && fence === "") {
      // With a plain --allow-env, Deno may read the whole environment, and removes the inherited fence.
      const all = await runCli(["lock", k, "--", ...PRINT_ENV], {
        env: { DFLOCKD_SERVERS: where(), DFLOCKD_FENCE: "999" },
        deno: { ...deno(), env: "all" },
      });
      expect(told(all.out)).toMatchObject({ DFLOCKD_KEY: k, DFLOCKD_FENCE: "unset" });
    }
  });

  it("names an IPv6 server in brackets", async () => {
    // dflockd joins host and port as text, so it needs the brackets; the double takes the bare address.
    const v6 = await startDflockd(["--host", currentServer() === "double" ? "::1" : "[::1]"]);
    try {
      const at = `[::1]:${v6.port}`;
      const r = await runCli(["lock", key(), "--servers", at, "--", ...PRINT_ENV], {
        deno: { net: [at], run: ["sh"] },
      });
      expect(r.code).toBe(0);
      expect(told(r.out).DFLOCKD_SERVER).toBe(at);
    } finally {
      await v6.stop();
    }
  });

  it("sem: the same, with the slot's lease", async () => {
    const k = key("sem");
    const r = await runCli(["sem", k, "--limit", "3", "--", ...PRINT_ENV], {
      env: { DFLOCKD_SERVERS: where() },
      deno: deno(),
    });
    expect(r.code).toBe(0);
    expect(told(r.out)).toMatchObject({ DFLOCKD_KEY: k, DFLOCKD_SERVER: where() });
    expect(told(r.out).DFLOCKD_LEASE).toMatch(/^[1-9]\d*$/);
  });
});

describe(`dflockd-client: the environment with fences and auth (${RUNTIME})`, () => {
  const SECRET = "env-secret-77";
  let server: DflockdServer;
  const where = () => `127.0.0.1:${server.port}`;
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${SECRET}\n`);
  afterAll(() => server?.stop());

  it("DFLOCKD_FENCE is the server's fence, in the environment and in the held line; the secret is nowhere", async () => {
    // The double with the fence of later dflockd builds (dflockd v1.10.0 sends none).
    server = await startDflockd(["--auth-token", SECRET], "double", { fence: true });
    const k = key();
    const args = ["--servers", where(), "--auth-token-file", tokenFile];
    const r = await runCli(["lock", k, ...args, "--", ...PRINT_ENV], {
      deno: { net: [where()], run: ["sh"], read: [tokenFile] },
    });
    expect(r.code).toBe(0);
    const first = told(r.out).DFLOCKD_FENCE as string;
    expect(first).toMatch(/^\d+$/);
    expect(r.out).not.toContain(SECRET);
    // Fences only grow: the next holder's is larger, here printed by lock KEY without a command.
    const held = await startCli(["lock", k, ...args], { deno: { net: [where()], read: [tokenFile] } });
    await held.printed("\n");
    const line = held.out().trim();
    expect(line).toMatch(new RegExp(`^key=${k} server=${where().replaceAll(".", "\\.")} fence=\\d+ lease=\\d+$`));
    expect(BigInt(line.replace(/.* fence=(\d+) .*/, "$1"))).toBeGreaterThan(BigInt(first));
    held.signal("SIGTERM");
    expect((await held.exited).code).toBe(0);
  });
});

describe(`dflockd-client: waiting (${RUNTIME})`, () => {
  const server = useDflockd();
  const where = () => `127.0.0.1:${server().port}`;
  const env = () => ({ DFLOCKD_SERVERS: where() });
  const holder = (k: string) => new DistributedLock({ key: k, servers: [server().address] });
  const queued = async (k: string) =>
    (await stats({ port: server().port })).locks.find((l) => l.key === k)?.waiters ?? 0;

  it("--timeout 500ms on a held key is busy after half a second, with the --conflict-exit-code status", async () => {
    const k = key();
    const h = holder(k);
    expect(await h.acquire()).toBe(true);
    try {
      const r = await runCli(["lock", k, "--timeout", "500ms", "--conflict-exit-code", "3", "--", "true"], {
        env: env(),
        deno: { net: [where()], run: ["true"] },
      });
      expect(r.code).toBe(3);
      expect(r.err).toMatch(/busy: lock ".*" on 127\.0\.0\.1:\d+ was not free within 500ms/);
      // Not before the half second; well before the whole second the server was asked for plus
      // a start-up (generous: a busy 2-core machine starts a runtime slowly).
      expect(r.ms).toBeGreaterThanOrEqual(500);
      expect(r.ms).toBeLessThan(RUNTIME === "deno" ? 8_000 : 5_000);
    } finally {
      await h.release();
    }
  });

  it("--wait waits past the default 10 s in one queued request, and keeps its place ahead of a later waiter", async () => {
    const k = key();
    const h = holder(k);
    expect(await h.acquire()).toBe(true);
    const marker = join(dir, `waited-${k}`);
    const run = await startCli(["lock", k, "--wait", "--", "sh", "-c", `sleep 1; echo ran > ${marker}`], {
      env: env(),
      deno: { net: [where()], run: ["sh"] },
    });
    await until(async () => (await queued(k)) === 1, 30_000, "the CLI to queue");
    const later = holder(k);
    const laterGranted = later.acquire({ timeoutS: 120 }).then((ok) => ({
      ok,
      // FIFO: the CLI, queued first, ran its command to its end before this one was granted.
      cliDone: (() => {
        try {
          return readFileSync(marker, "utf8").trim();
        } catch {
          return "not yet";
        }
      })(),
    }));
    await until(async () => (await queued(k)) === 2, 30_000, "the later waiter to queue");
    // Past the default --timeout of 10 s: without --wait the CLI would have given up by now.
    await elapse(11_000);
    expect(run.child.exitCode).toBeNull();
    await h.release();
    expect((await run.exited).code).toBe(0);
    expect(await laterGranted).toEqual({ ok: true, cliDone: "ran" });
    await later.release();
  }, 60_000);
});

describe(`dflockd-client: lock KEY without a command (${RUNTIME})`, () => {
  const server = useDflockd();
  const where = () => `127.0.0.1:${server().port}`;
  const env = () => ({ DFLOCKD_SERVERS: where() });

  it("prints its line once held, holds until SIGTERM, then releases and exits 0", async () => {
    const k = key();
    const run = await startCli(["lock", k, "--lease", "2"], { env: env(), deno: { net: [where()] } });
    await run.printed("\n");
    expect(run.out()).toMatch(new RegExp(`^key=${k} server=127\\.0\\.0\\.1:${server().port} fence=\\d* lease=2\\n$`));
    const other = new DistributedLock({ key: k, servers: [server().address] });
    expect(await other.acquire({ timeoutS: 0 })).toBe(false);
    // Held past its 2 s lease: renewed while it waits for the signal.
    await elapse(3_000);
    expect(await other.acquire({ timeoutS: 0 })).toBe(false);
    run.signal("SIGTERM");
    const end = await run.exited;
    expect(end.code).toBe(0);
    expect(await other.acquire({ timeoutS: 10 })).toBe(true);
    await other.release();
  });

  it("sem KEY --limit N: the same with a slot, ended by SIGINT", async () => {
    const k = key("sem");
    const run = await startCli(["sem", k, "--limit", "1"], { env: env(), deno: { net: [where()] } });
    await run.printed("\n");
    expect(run.out()).toMatch(new RegExp(`^key=${k} server=`));
    const other = new DistributedSemaphore({ key: k, limit: 1, servers: [server().address] });
    expect(await other.acquire({ timeoutS: 0 })).toBe(false);
    run.signal("SIGINT");
    expect((await run.exited).code).toBe(0);
    expect(await other.acquire({ timeoutS: 10 })).toBe(true);
    await other.release();
  });

  it("exits 76 with a message when the lock is lost meanwhile", async () => {
    const own = await startDflockd();
    const at = `127.0.0.1:${own.port}`;
    const run = await startCli(["lock", key()], { env: { DFLOCKD_SERVERS: at }, deno: { net: [at] } });
    await run.printed("\n");
    await own.kill();
    const end = await run.exited;
    expect(end.code).toBe(76);
    expect(run.err()).toMatch(/lock ".*" was lost/);
  });
});
