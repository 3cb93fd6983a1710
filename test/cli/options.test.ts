/**
 * The command line's options on every runtime: stats as a table and as JSON,
 * auth from a file or the environment (never the command line), TLS with a
 * private CA, usage errors before anything connects, and the status line on
 * a terminal.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { testCerts } from "../harness/certs.ts";
import { freePort } from "../harness/dflockd.ts";
import { elapse, key, until, useDflockd } from "../integration/helpers.ts";
import { DistributedLock, DistributedSemaphore, stats } from "../support/client.ts";
import { RUNTIME } from "../support/runtime.ts";
import { cliCommand, runCli, startCli } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "dflockd-cli-options-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe(`dflockd-client stats (${RUNTIME})`, () => {
  const server = useDflockd();
  const where = () => `127.0.0.1:${server().port}`;

  it("--json prints one parsable entry per server, and says which did not answer (exit 69)", async () => {
    const k = key();
    const s = key("sem");
    const lock = new DistributedLock({ key: k, servers: [server().address] });
    const slot = new DistributedSemaphore({ key: s, limit: 3, servers: [server().address] });
    expect(await lock.acquire()).toBe(true);
    expect(await slot.acquire()).toBe(true);
    try {
      const dead = `127.0.0.1:${await freePort()}`;
      const r = await runCli(["stats", "--json", "--servers", `${where()},${dead}`, "--timeout", "5"], {
        deno: { net: [where(), dead] },
      });
      expect(r.code).toBe(69);
      const all = JSON.parse(r.out) as Array<Record<string, unknown>>;
      expect(all.map((e) => [e.server, e.ok])).toEqual([
        [where(), true],
        [dead, false],
      ]);
      const stats = all[0]?.stats as {
        locks: Array<{ key: string }>;
        semaphores: Array<{ key: string; limit: number }>;
      };
      expect(stats.locks.map((l) => l.key)).toContain(k);
      expect(stats.semaphores.find((m) => m.key === s)?.limit).toBe(3);
      expect(all[1]?.error).toMatchObject({ code: "CONNECTION" });
      const ok = await runCli(["stats", "--json"], { env: { DFLOCKD_SERVERS: where() }, deno: { net: [where()] } });
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.out)).toHaveLength(1);
    } finally {
      await lock.release();
      await slot.release();
    }
  });

  it("prints a table with the held locks and semaphores", async () => {
    const k = key();
    const lock = new DistributedLock({ key: k, servers: [server().address] });
    expect(await lock.acquire()).toBe(true);
    try {
      const r = await runCli(["stats", "--servers", where()], { deno: { net: [where()] } });
      expect(r.code).toBe(0);
      expect(r.out).toContain(`${where()}  `);
      expect(r.out).toMatch(/LOCK\s+OWNER\s+LEASE LEFT\s+WAITERS/);
      expect(r.out).toMatch(new RegExp(`${k}\\s+conn \\d+\\s+\\d+\\.\\ds\\s+0`));
    } finally {
      await lock.release();
    }
  });
});

describe(`dflockd-client with auth and TLS (${RUNTIME})`, () => {
  const certs = testCerts();
  const SECRET = "cli-secret-42";
  const server = useDflockd(["--tls-cert", certs.certFile, "--tls-key", certs.keyFile, "--auth-token", SECRET]);
  const where = () => `localhost:${server().port}`;
  const caFile = join(dir, "ca.pem");
  const tokenFile = join(dir, "token");
  const badTokenFile = join(dir, "bad-token");
  writeFileSync(caFile, certs.ca);
  writeFileSync(tokenFile, `${SECRET}\n`);
  writeFileSync(badTokenFile, "wrong\n");
  const deno = (read: string[]) => ({ net: [where()], run: ["sh"], read });

  /** `lock KEY -- sh -c SCRIPT` on the TLS server with the CA from a file and the token from `token`. */
  const lockWithToken = (token: string, script: string) =>
    runCli(
      ["lock", key(), "--servers", where(), "--tls-ca", caFile, "--auth-token-file", token, "--", "sh", "-c", script],
      { deno: deno([caFile, token]) },
    );

  it("takes the token from --auth-token-file and the CA from --tls-ca", async () => {
    const r = await lockWithToken(tokenFile, "exit 4");
    expect({ code: r.code, err: r.err }).toEqual({ code: 4, err: "" });
  });

  it("takes the token from DFLOCKD_AUTH_TOKEN", async () => {
    const r = await runCli(["stats", "--json", "--servers", where(), "--tls-ca", caFile], {
      env: { DFLOCKD_AUTH_TOKEN: SECRET },
      deno: deno([caFile]),
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)[0].ok).toBe(true);
  });

  it("a refused token exits 77 and never prints it", async () => {
    const r = await lockWithToken(badTokenFile, "echo ran");
    expect(r.code).toBe(77);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/authentication failed: the server refused the auth token/);
    // The command line's own fix, not the library's `auth` option.
    expect(r.err).toContain("check the token given by --auth-token-file FILE or DFLOCKD_AUTH_TOKEN");
    expect(r.err).not.toContain("auth option");
    expect(r.err).not.toContain("wrong");
    const st = await runCli(["stats", "--json", "--servers", where(), "--tls-ca", caFile], {
      env: { DFLOCKD_AUTH_TOKEN: "wrong" },
      deno: deno([caFile]),
    });
    expect(st.code).toBe(77);
    const entry = JSON.parse(st.out)[0].error;
    expect(entry.code).toBe("AUTH");
    expect(entry.message).toContain("--auth-token-file FILE or DFLOCKD_AUTH_TOKEN");
  });

  it("no token for a server that wants one exits 77 and says how to give it", async () => {
    const r = await runCli(["lock", key(), "--servers", where(), "--tls-ca", caFile, "--", "sh", "-c", "echo ran"], {
      deno: deno([caFile]),
    });
    expect({ code: r.code, out: r.out }).toEqual({ code: 77, out: "" });
    expect(r.err).toContain(
      "the server requires an auth token and none was given; give the server's --auth-token with --auth-token-file FILE or DFLOCKD_AUTH_TOKEN",
    );
    expect(r.err).not.toContain("auth option");
    const st = await runCli(["stats", "--servers", where(), "--tls-ca", caFile], { deno: deno([caFile]) });
    expect(st.code).toBe(77);
    expect(st.out).toContain("none was given; give the server's --auth-token with --auth-token-file FILE");
  });

  it("refuses a secret on the command line (64) before connecting", async () => {
    const r = await runCli(["lock", key(), "--servers", where(), "--auth-token", SECRET, "--", "true"], {
      deno: deno([]),
    });
    expect(r.code).toBe(64);
    expect(r.err).toContain("--auth-token-file");
    expect(r.err).not.toContain(SECRET);
  });

  it("an unreadable --tls-ca file exits 66", async () => {
    const missing = join(dir, "missing.pem");
    const r = await runCli(["stats", "--servers", where(), "--tls-ca", missing], { deno: deno([missing]) });
    expect(r.code).toBe(66);
    expect(r.err).toContain(`--tls-ca: cannot read ${missing}`);
  });
});

describe(`dflockd-client usage (${RUNTIME})`, () => {
  it("refuses bad arguments with 64 before anything connects", async () => {
    // Nobody listens on this port: a connection attempt would exit 69, not 64.
    const dead = `127.0.0.1:${await freePort()}`;
    const deno = { net: [dead], run: ["true"] };
    for (const [args, message] of [
      [["lock", "k", "true"], 'put the command after "--"'],
      [["lock", "k", "--"], 'no command after "--"'],
      [["lock", "--", "true"], "which key?"],
      [["sem", "k", "--", "true"], "--limit N is required"],
      [["lock", "k", "--lease", "0", "--", "true"], "--lease must be from 1 to 3600"],
      [["lock", "k", "--lease", "5s", "--", "true"], "seconds, as a plain number"],
      [["lock", "k", "--timeout", "5 s", "--", "true"], "or one with a unit (500ms, 90s, 5m, 2h)"],
      [["lock", "k", "--wait", "--timeout", "5m", "--", "true"], "--wait and --timeout together"],
      [["lock", "k", "--conflict-exit-code", "300", "--", "true"], "--conflict-exit-code must be from 0 to 255"],
      [["lock", "k", "--key", "k", "--", "true"], 'the key "k" is given twice'],
      [["sem", "--key", "a", "--key", "bad key", "--limit", "2", "--", "true"], "key"],
      [["lock", "k", "--timout", "5", "--", "true"], "did you mean --timeout?"],
      [["lokc", "k"], "did you mean lock?"],
      [["lock", "bad key", "--", "true"], "key"],
      [["stats", "--timeout", "0"], "at least 1 second"],
    ] as const) {
      const r = await runCli([args[0], "--servers", dead, ...args.slice(1)], { deno });
      expect({ args, code: r.code }).toEqual({ args, code: 64 });
      expect(r.err).toContain(message);
    }
    const bad = await runCli(["lock", "k", "--", "true"], { env: { DFLOCKD_SERVERS: "host:99999" }, deno });
    expect(bad.code).toBe(64);
    expect(bad.err).toContain("DFLOCKD_SERVERS");
  });

  it("refuses a server the API refuses, with 64 and the same reason, before connecting", async () => {
    const deno = { net: [], run: ["true"] };
    for (const [entry, message] of [
      ["[[::1]:6388", '"[[::1]:6388": brackets go only around an IPv6 address'],
      ["a]:6388", '"a]:6388": brackets go only around an IPv6 address'],
      ["http://127.0.0.1:6388", "a URL is not a server: write host:port without a scheme"],
    ] as const) {
      for (const env of [{}, { DFLOCKD_SERVERS: entry }]) {
        const args =
          "DFLOCKD_SERVERS" in env ? ["lock", "k", "--", "true"] : ["lock", "k", "--servers", entry, "--", "true"];
        const r = await runCli(args, { env, deno });
        expect({ entry, env, code: r.code }).toEqual({ entry, env, code: 64 });
        expect(r.err).toContain(message);
        expect(r.err).not.toContain("IPv6 address in brackets");
      }
    }
  });

  it("refuses an empty --servers instead of falling back to the default server", async () => {
    const r = await runCli(["lock", "k", "--servers", "", "--", "true"], { deno: { net: [], run: ["true"] } });
    expect(r.code).toBe(64);
    expect(r.err).toContain("--servers: empty entry");
  });

  it("takes the servers from DFLOCKD_SERVERS; where it cannot be read (Deno without --allow-env) says so", async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const env = { DFLOCKD_SERVERS: dead };
    const r = await runCli(["stats", "--json"], { env, deno: { net: [dead] } });
    expect(r.code).toBe(69);
    expect(JSON.parse(r.out)[0].server).toBe(dead);
    expect(r.err).toBe("");
    if (RUNTIME === "deno") {
      const denied = await runCli(["stats", "--json"], { env, deno: { net: ["127.0.0.1:6388"], env: false } });
      expect(JSON.parse(denied.out)[0].server).toBe("127.0.0.1:6388");
      expect(denied.err).toContain("DFLOCKD_SERVERS cannot be read without --allow-env=DFLOCKD_SERVERS");
    }
  });

  it("--help lists every option; help lock describes the exit statuses", async () => {
    const r = await runCli(["--help"], { deno: { net: [] } });
    expect(r.code).toBe(0);
    for (const o of [
      "--servers",
      "--timeout",
      "--lease",
      "--tls",
      "--tls-ca",
      "--auth-token-file",
      "--quiet",
      "--version",
    ]) {
      expect(r.out).toContain(o);
    }
    const lock = await runCli(["help", "lock"], { deno: { net: [] } });
    expect(lock.out).toMatch(/--grace/);
    expect(lock.out).toMatch(/--key KEY/);
    expect(lock.out).toMatch(/75\s+busy/);
    expect(lock.out).toMatch(/76\s+the lock was lost/);
    for (const o of [
      "--wait",
      "--conflict-exit-code N",
      "DFLOCKD_FENCE",
      "key=KEY server=HOST:PORT fence=FENCE lease=SECONDS",
    ]) {
      expect(lock.out).toContain(o);
    }
    // The exit statuses read as a table: every meaning starts in the same column.
    const table = lock.out
      .slice(lock.out.indexOf("Exit status:\n") + "Exit status:\n".length)
      .trimEnd()
      .split("\n");
    expect(table.length).toBeGreaterThanOrEqual(12);
    // Where a row's meaning starts: after the status and the first run of two or more spaces.
    const starts = new Set(table.map((line) => /^ {2}.*? {2,}(?=\S)/u.exec(line)?.[0].length));
    expect([...starts]).toHaveLength(1);
    expect(starts.has(undefined)).toBe(false);
    for (const code of ["64", "66", "69", "70", "75", "76", "77", "126", "127"]) {
      expect(table.some((line) => line.trimStart().startsWith(`${code} `))).toBe(true);
    }
  });

  it("an unreachable server exits 69 naming it", async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const r = await runCli(["lock", key(), "--servers", dead, "--", "true"], { deno: { net: [dead], run: ["true"] } });
    expect(r.code).toBe(69);
    expect(r.err).toContain(dead);
  });
});

describe(`dflockd-client status line (${RUNTIME})`, () => {
  const server = useDflockd();
  const where = () => `127.0.0.1:${server().port}`;
  const queueOf = async (k: string) =>
    (await stats({ port: server().port })).locks.find((l) => l.key === k)?.waiters ?? 0;

  /**
   * Start the CLI on a terminal: util-linux `script` gives it a pseudo-terminal
   * and copies what the terminal shows into a file. Resolves when it exits.
   */
  async function onTerminal(
    args: string[],
    run: string[] = ["true"],
  ): Promise<{ shown: () => string; exited: Promise<number | null>; type: (text: string) => void }> {
    const [cmd, argv] = await cliCommand(args, { net: [where()], run });
    // `exec`: the shell `script` starts must not stay in the terminal's foreground
    // group, or a Ctrl-C ends it too (dash, a common /bin/sh, then exits 130).
    const line = `exec ${[cmd, ...argv].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ")}`;
    const file = join(dir, `tty-${key()}`);
    writeFileSync(file, "");
    // The same shell everywhere (script runs `$SHELL -c`): CI may have no SHELL, or another.
    const env = { ...process.env, DFLOCKD_SERVERS: where(), SHELL: "/bin/sh" };
    const child = spawn("script", ["-qefc", line, file], { stdio: ["pipe", "ignore", "ignore"], env });
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once("error", (err) =>
        reject(new Error(`the terminal test needs util-linux's script (Debian: apt-get install bsdutils): ${err}`)),
      );
      child.once("exit", (code) => resolve(code));
    });
    return { shown: () => readFileSync(file, "utf8"), exited, type: (text) => child.stdin?.write(text) };
  }

  it("shows the key, server, time waited and waiters ahead while waiting, then erases it", async () => {
    const k = key();
    const first = new DistributedLock({ key: k, servers: [server().address] });
    const second = new DistributedLock({ key: k, servers: [server().address] });
    expect(await first.acquire()).toBe(true);
    const secondGranted = second.acquire({ timeoutS: 60 });
    await until(async () => (await queueOf(k)) === 1, 30_000, "the second holder to queue");
    const tty = await onTerminal(["lock", k, "--timeout", "60", "--", "true"]);
    const line = new RegExp(`waiting for lock "${k}" on ${where().replaceAll(".", "\\.")}: \\d+s, 1 ahead`);
    await until(() => line.test(tty.shown()), 30_000, "the status line with 1 ahead");
    await first.release();
    expect(await secondGranted).toBe(true);
    await second.release();
    expect(await tty.exited).toBe(0);
    const shown = tty.shown();
    // Erased once the wait is over: the erase sequence comes after the last status text.
    expect(shown.lastIndexOf("\u001b[2K")).toBeGreaterThan(shown.lastIndexOf("ahead"));
  });

  it("on a terminal, Ctrl-C reaches the command once: from the terminal, not passed on again", async () => {
    // The command counts SIGINTs for 1.5 s after the first (the subject is an absence), then says how many.
    const counter = join(dir, "count-sigint.mjs");
    writeFileSync(
      counter,
      [
        "let n = 0;",
        "const exit = (c) => (globalThis.Deno ? Deno.exit(c) : process.exit(c));",
        'const on = () => { if (++n === 1) setTimeout(() => { console.log("SIGINTs: " + n); exit(0); }, 1500); };',
        'if (globalThis.Deno) Deno.addSignalListener("SIGINT", on); else process.on("SIGINT", on);',
        'console.log("ready"); setInterval(() => {}, 1000);',
      ].join("\n"),
    );
    const runtime = RUNTIME === "deno" ? [process.execPath, "run", counter] : [process.execPath, counter];
    const tty = await onTerminal(["lock", key(), "--", ...runtime], [process.execPath]);
    await until(() => tty.shown().includes("ready"), 30_000, "the command to start");
    tty.type("\u0003"); // Ctrl-C: the terminal signals its foreground group, the command and dflockd-client
    expect(await tty.exited).toBe(0);
    expect(tty.shown()).toContain("SIGINTs: 1");
  });

  it("shows nothing when stderr is not a terminal, nor on a terminal with --quiet", async () => {
    const k = key();
    const first = new DistributedLock({ key: k, servers: [server().address] });
    expect(await first.acquire()).toBe(true);
    const run = await startCli(["lock", k, "--timeout", "60", "--", "true"], {
      env: { DFLOCKD_SERVERS: where() },
      deno: { net: [where()], run: ["true"] },
    });
    const tty = await onTerminal(["lock", k, "--timeout", "60", "--quiet", "--", "true"]);
    await until(async () => (await queueOf(k)) === 2, 30_000, "both runs to queue");
    await elapse(1_500); // the subject is time: a status line would be up after 250 ms
    await first.release();
    expect((await run.exited).code).toBe(0);
    expect(await tty.exited).toBe(0);
    expect(run.err()).toBe("");
    expect(tty.shown()).not.toContain("waiting for");
  });
});
