/**
 * `dflockd-client serve` as a user runs it: a child process of the runtime
 * under test, started and stopped as dflockd is (stderr's `listening` line,
 * SIGTERM's drain, `configuration error` and status 1), and used by the
 * library, by `dflockd-client lock` and by the README's quick start.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { freePort } from "../harness/dflockd.ts";
import { key, until } from "../integration/helpers.ts";
import { AuthError, DflockdClient, stats } from "../support/client.ts";
import { ROOT, RUNTIME, runChild, runTs } from "../support/runtime.ts";
import { type CliOptions, type CliRun, type DenoPermissions, runCli, startCli } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "dflockd-cli-serve-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LISTENING = /level=INFO msg=listening addr=127\.0\.0\.1:(\d+)\n/;
const DRAINING = 'level=INFO msg="shutting down, draining connections"\n';
/** Deno: listen on 127.0.0.1 (any port), nothing else unless a test adds it. */
const deno = (more: Partial<DenoPermissions> = {}): DenoPermissions => ({ net: ["127.0.0.1"], env: false, ...more });

const running = new Set<CliRun>();
afterEach(() => {
  for (const run of running) run.signal("SIGKILL");
  running.clear();
});

/** Start `serve` with `flags`; resolves once it has logged its listening line, with the port in it. */
async function serve(flags: string[], options: CliOptions = { deno: deno() }): Promise<{ run: CliRun; port: number }> {
  const run = await startCli(["serve", ...flags], options);
  running.add(run);
  void run.exited.then(() => running.delete(run));
  const m = await run.logged(LISTENING, 20_000);
  return { run, port: Number(m[1]) };
}

/** A raw protocol connection: one request at a time, and whether the server has closed it. */
async function wire(port: number) {
  const sock = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", () => resolve());
    sock.once("error", reject);
  });
  sock.on("error", () => {});
  let buf = "";
  const replies: string[] = [];
  let wake = (): void => {};
  sock.on("data", (b: Buffer) => {
    buf += b.toString();
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      replies.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    wake();
  });
  const ended = new Promise<void>((resolve) => sock.once("close", () => resolve()));
  return {
    ended,
    /** Send `cmd key arg`; resolves with the reply, or `undefined` if the server closed the connection. */
    async ask(cmd: string, k: string, arg: string): Promise<string | undefined> {
      sock.write(`${cmd}\n${k}\n${arg}\n`);
      const reply = new Promise<void>((resolve) => {
        wake = resolve;
      });
      if (replies.length === 0) await Promise.race([reply, ended]);
      return replies.shift();
    },
    close: () => sock.destroy(),
  };
}

describe(`dflockd-client serve (${RUNTIME})`, () => {
  it("says it is a development server, then logs listening with the port it picked; locks work; SIGTERM exits 0", async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { config: { dflockdVersion: string } };
    const { run, port } = await serve(["--port", "0"]);
    expect(port).toBeGreaterThan(0);
    const err = run.err();
    const note = err.indexOf("a development server, for tests and first steps");
    expect(note).toBeGreaterThanOrEqual(0);
    expect(
      err.indexOf(`go install github.com/mtingers/dflockd/cmd/dflockd@${pkg.config.dflockdVersion}`),
    ).toBeGreaterThan(note);
    expect(err.search(LISTENING)).toBeGreaterThan(note);

    // The library: a lock is exclusive, and free again once released.
    const k = key();
    const client = new DflockdClient({ servers: [["127.0.0.1", port]] });
    const [a, b] = [client.lock(k), client.lock(k)];
    expect(await a.acquire({ timeoutS: 0 })).toBe(true);
    expect(await b.acquire({ timeoutS: 0 })).toBe(false);
    await a.release();
    expect(await b.acquire({ timeoutS: 0 })).toBe(true);
    // The command line's lock: busy while the library holds the key, then runs the command.
    const where = `127.0.0.1:${port}`;
    const cli = { deno: { net: [where], run: ["sh"] } };
    const busy = await runCli(["lock", k, "--servers", where, "--timeout", "0", "--", "sh", "-c", "exit 3"], cli);
    expect(busy.code).toBe(75);
    await b.release();
    const ran = await runCli(["lock", k, "--servers", where, "--timeout", "5", "--", "sh", "-c", "exit 3"], cli);
    expect(ran.code).toBe(3);
    client.close();

    run.signal("SIGTERM");
    expect(await run.exited).toMatchObject({ code: 0, signal: null });
    expect(run.err()).toContain(DRAINING);
  });

  it("on SIGTERM answers a blocked lock with error, takes no new connection, serves an open one until it closes, then exits 0", async () => {
    const { run, port } = await serve(["--port", "0"]);
    const k = key();
    const holder = await wire(port);
    const waiter = await wire(port);
    const grant = await holder.ask("l", k, "10");
    expect(grant).toMatch(/^ok \S+ 33$/);
    const token = grant?.split(" ")[1] as string;
    const blocked = waiter.ask("l", k, "30");
    await until(async () => (await stats({ port })).locks.find((l) => l.key === k)?.waiters === 1, 10_000, "queued");

    run.signal("SIGTERM");
    expect(await blocked).toBe("error");
    await run.logged(/shutting down, draining connections/);
    await until(
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect({ host: "127.0.0.1", port });
          s.once("error", () => resolve(true));
          s.once("close", () => resolve(true));
          s.once("data", () => resolve(false));
          s.once("connect", () => s.write("stats\n_\n\n"));
        }),
      10_000,
      "new connections to be refused or closed unanswered",
    );
    // Later signals are caught, as dflockd's signal.NotifyContext leaves them: they do not cut the drain short.
    run.signal("SIGINT");
    run.signal("SIGTERM");
    expect(await holder.ask("n", k, `${token} 20`)).toBe("ok 20");
    expect(await holder.ask("stats", "_", "")).toMatch(/^ok \{"connections":2,/);
    waiter.close();
    // The holder alone keeps it serving.
    await until(
      async () => /^ok \{"connections":1,/.test((await holder.ask("stats", "_", "")) ?? ""),
      10_000,
      "the waiter's connection to be gone",
    );
    const t0 = performance.now();
    holder.close();
    expect(await run.exited).toMatchObject({ code: 0, signal: null });
    // Ended by the last close, not by --shutdown-timeout's 30 s.
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it("--shutdown-timeout 1 closes a connection that stays open, then exits 0", async () => {
    const { run, port } = await serve(["--port", "0", "--shutdown-timeout", "1"]);
    const idle = await wire(port);
    expect(await idle.ask("stats", "_", "")).toMatch(/^ok \{/);
    const t0 = performance.now();
    run.signal("SIGTERM");
    await idle.ended;
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(10_000); // not the read timeout (23 s)
    expect(await run.exited).toMatchObject({ code: 0, signal: null });
    expect(run.err()).toContain('level=WARN msg="shutdown timeout reached, force-closing connections"\n');
  });

  it("--server-version 2.1 answers as v2.1 (ping; a token that carries the fence; error_draining, then a close, on SIGTERM)", async () => {
    const { run, port } = await serve(["--port", "0", "--server-version", "2.1"]);
    const c = await wire(port);
    expect(await c.ask("ping", "_", "")).toBe("ok");
    const fence = (reply: string | undefined): bigint => BigInt(`0x${(reply?.split(" ")[1] ?? "").slice(0, 16)}`);
    const a = fence(await c.ask("l", key(), "0"));
    expect(fence(await c.ask("sl", key(), "0 2")) - a).toBe(1n);
    run.signal("SIGTERM");
    await run.logged(/shutting down, draining connections/);
    expect(await c.ask("stats", "_", "")).toBe("error_draining");
    await c.ended;
    expect(await run.exited).toMatchObject({ code: 0, signal: null });
  });

  it("refuses a bad flag or setting as dflockd does: 'configuration error' on stderr, status 1", async () => {
    for (const [flags, message] of [
      [["--port", "99999"], "configuration error: --port must be 0-65535 (got 99999)\n"],
      [["--bogus=1"], "configuration error: flag provided but not defined: -bogus\n"],
      [
        ["--server-version", "3"],
        'configuration error: --server-version must be one of "1.10", "1.16", "2.1" (got "3")\n',
      ],
    ] as const) {
      const r = await runCli(["serve", ...flags], { deno: deno() });
      expect({ flags, code: r.code, end: r.err.slice(-message.length) }).toEqual({ flags, code: 1, end: message });
      expect(r.err).not.toMatch(/listening/);
    }
    const missing = join(dir, "no-such-token");
    const r = await runCli(["serve", "--auth-token-file", missing], { deno: deno({ read: [missing] }) });
    expect(r.code).toBe(1);
    expect(r.err).toContain(`configuration error: reading auth token file ${JSON.stringify(missing)}: `);
  });

  it("takes the port from DFLOCKD_PORT when --port is not given", async () => {
    const p = await freePort();
    const { run, port } = await serve([], { env: { DFLOCKD_PORT: String(p) }, deno: deno({ env: ["DFLOCKD_PORT"] }) });
    expect(port).toBe(p);
    expect((await stats({ port })).locks).toEqual([]);
    run.signal("SIGTERM");
    expect((await run.exited).code).toBe(0);
  });

  it("--auth-token-file: a client with the token is served, one without is refused", async () => {
    const file = join(dir, "token");
    writeFileSync(file, "s3cret-serve\n");
    const { run, port } = await serve(["--port", "0", "--auth-token-file", file], { deno: deno({ read: [file] }) });
    const good = new DflockdClient({ servers: [["127.0.0.1", port]], auth: "s3cret-serve" });
    const bad = new DflockdClient({ servers: [["127.0.0.1", port]], auth: "wrong" });
    const none = new DflockdClient({ servers: [["127.0.0.1", port]] });
    try {
      const k = key();
      expect(await good.lock(k).acquire({ timeoutS: 0 })).toBe(true);
      await expect(bad.lock(k).acquire({ timeoutS: 0 })).rejects.toBeInstanceOf(AuthError);
      await expect(none.lock(k).acquire({ timeoutS: 1 })).rejects.toBeInstanceOf(AuthError);
    } finally {
      for (const c of [good, bad, none]) c.close();
    }
    run.signal("SIGTERM");
    expect((await run.exited).code).toBe(0);
  });

  it("runs the README's quick start (its default server swapped for serve's port)", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("\n## Quick start\n"));
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    if (code === undefined) throw new Error("README.md has no ts block under '## Quick start'");
    const { run, port } = await serve(["--port", "0"]);
    // The quick start uses the default server (127.0.0.1:6388); point it at serve's port instead, import this
    // checkout's entry for the runtime, and say when the function inside withLock runs.
    const edits: Array<[RegExp, string]> = [
      [/from "dflockd-client"/, `from "../adapters/${RUNTIME}/index.ts"`],
      [/new DistributedLock\(\{/, `new DistributedLock({ servers: [["127.0.0.1", ${port}]], `],
      [/withLock\(async \(\) => \{/, `withLock(async () => {\n  console.log("inside withLock");`],
    ];
    let script = code;
    for (const [from, to] of edits) {
      expect(script, `the quick start has ${from}`).toMatch(from);
      script = script.replace(from, to);
    }
    const tmp = join(ROOT, ".test-tmp");
    mkdirSync(tmp, { recursive: true });
    const file = join(tmp, `quick-start-${process.pid}.ts`);
    writeFileSync(file, `${script}console.log("after withLock");\n`);
    const [cmd, args] = await runTs(file);
    const r = await runChild(cmd, args);
    expect({ code: r.code, out: r.out, err: r.err }).toEqual({
      code: 0,
      out: "inside withLock\nafter withLock\n",
      err: "",
    });
    run.signal("SIGTERM");
    expect((await run.exited).code).toBe(0);
  });
});
