/**
 * `dflockd-client lock` and `sem` as a user runs them: a child process of the
 * runtime under test, against the run's dflockd (real when found, else the
 * double; see test/harness).
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startDflockd } from "../harness/dflockd.ts";
import { key, until, useDflockd } from "../integration/helpers.ts";
import { DistributedLock, DistributedSemaphore, stats } from "../support/client.ts";
import { RUNTIME } from "../support/runtime.ts";
import { type DenoPermissions, runCli, startCli } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "dflockd-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe(`dflockd-client lock (${RUNTIME})`, () => {
  const server = useDflockd();
  const where = () => `127.0.0.1:${server().port}`;
  const env = () => ({ DFLOCKD_SERVERS: where() });
  const deno = (run: string[] = ["sh"]): DenoPermissions => ({ net: [where()], run });
  const holder = (k: string) => new DistributedLock({ key: k, servers: [server().address] });

  it("names the runtime's own sockets and process API in --version", async () => {
    const r = await runCli(["--version"], { deno: deno() });
    expect(r.code).toBe(0);
    const apis = {
      node: "node:net, node:child_process",
      bun: "Bun.connect, Bun.spawn",
      deno: "Deno.connect, Deno.Command",
    };
    expect(r.out).toContain(`(${RUNTIME} `);
    expect(r.out).toContain(apis[RUNTIME]);
  });

  it("passes the command's exit code through, and 128+N for a signal", async () => {
    const k = key();
    for (const [script, code] of [
      ["exit 0", 0],
      ["exit 7", 7],
      ["exit 255", 255],
      ["kill -TERM $$", 143],
      ["kill -KILL $$", 137],
    ] as const) {
      const r = await runCli(["lock", k, "--", "sh", "-c", script], { env: env(), deno: deno() });
      expect({ script, code: r.code }).toEqual({ script, code });
    }
    // Each run released: the key is free.
    expect((await stats({ port: server().port })).locks.some((l) => l.key === k)).toBe(false);
  });

  it("exits 127 for a command that does not exist, 126 for one that cannot run, and releases", async () => {
    const k = key();
    const r = await runCli(["lock", k, "--", "no-such-command-dflockd"], {
      env: env(),
      deno: deno(["no-such-command-dflockd"]),
    });
    expect(r.code).toBe(127);
    expect(r.err).toContain("no-such-command-dflockd: command not found");
    const notRunnable = join(dir, "not-executable.sh");
    writeFileSync(notRunnable, "echo ran\n", { mode: 0o644 });
    const r2 = await runCli(["lock", k, "--", notRunnable], { env: env(), deno: deno([notRunnable]) });
    expect({ code: r2.code, out: r2.out }).toEqual({ code: 126, out: "" });
    const h = holder(k);
    expect(await h.acquire({ timeoutS: 0 })).toBe(true);
    await h.release();
  });

  it("two concurrent runs never interleave", async () => {
    const k = key();
    const file = join(dir, `interleave-${k}`);
    const fd = openSync(file, "a");
    try {
      const cmd = ["lock", k, "--timeout", "30", "--", "sh", "-c", "echo start; sleep 1; echo end"];
      const runs = await Promise.all([0, 1].map(() => startCli(cmd, { env: env(), deno: deno(), stdoutFd: fd })));
      const ends = await Promise.all(runs.map((r) => r.exited));
      expect(ends.map((e) => e.code)).toEqual([0, 0]);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, "utf8")).toBe("start\nend\nstart\nend\n");
  });

  it("--timeout 0 on a held key exits busy (75) at once without running the command", async () => {
    const k = key();
    const h = holder(k);
    expect(await h.acquire()).toBe(true);
    try {
      const marker = join(dir, `ran-${k}`);
      const r = await runCli(["lock", k, "--timeout", "0", "--", "sh", "-c", `touch ${marker}`], {
        env: env(),
        deno: deno(),
      });
      expect(r.code).toBe(75);
      expect(r.err).toMatch(/busy: lock ".*" on 127\.0\.0\.1:\d+ was not free within 0s/);
      expect(() => readFileSync(marker)).toThrow();
      // One try: no waiting for a timeout (generous for a busy 2-core machine; a wait would be >= 1 s).
      expect(r.ms).toBeLessThan(RUNTIME === "deno" ? 8_000 : 5_000);
      const quiet = await runCli(["lock", k, "--timeout", "0", "--quiet", "--", "true"], {
        env: env(),
        deno: deno(["true"]),
      });
      expect(quiet.code).toBe(75);
      expect(quiet.err).toBe("");
    } finally {
      await h.release();
    }
  });

  it("--key takes a key that begins with a dash: the same lock the library takes", async () => {
    const k = `-${key()}`;
    const h = holder(k);
    expect(await h.acquire()).toBe(true);
    const busy = await runCli(["lock", "--key", k, "--timeout", "0", "--", "true"], {
      env: env(),
      deno: deno(["true"]),
    });
    expect(busy.code).toBe(75);
    await h.release();
    const ran = await runCli(["lock", `--key=${k}`, "--", "sh", "-c", "exit 4"], { env: env(), deno: deno() });
    expect(ran.code).toBe(4);
  });

  it("SIGINT while waiting exits 130 promptly and leaves nothing held or queued", async () => {
    const k = key();
    const h = holder(k);
    expect(await h.acquire()).toBe(true);
    const run = await startCli(["lock", k, "--timeout", "60", "--", "true"], { env: env(), deno: deno(["true"]) });
    await until(
      async () => (await stats({ port: server().port })).locks.find((l) => l.key === k)?.waiters === 1,
      30_000,
      "the CLI to be queued",
    );
    const t0 = performance.now();
    run.signal("SIGINT");
    const end = await run.exited;
    expect(end.code).toBe(130);
    expect(run.out()).toBe(""); // the command never ran
    // Promptly: no waiting out --timeout (60 s); generous for a busy machine.
    expect(performance.now() - t0).toBeLessThan(10_000);
    // dflockd keeps a closed connection's place in the queue until its turn, then finds it gone
    // and passes the lock on: the next holder gets it, and the interrupted run holds nothing.
    await h.release();
    const next = holder(k);
    expect(await next.acquire({ timeoutS: 10 })).toBe(true);
    const held = (await stats({ port: server().port })).locks.filter((l) => l.key === k);
    expect(held.map((l) => l.waiters)).toEqual([0]);
    await next.release();
  });

  it("forwards SIGTERM to the command and releases only after it has ended", async () => {
    const k = key();
    const marker = join(dir, `ended-${k}`);
    const script = `trap 'sleep 1; echo ended > ${marker}; exit 3' TERM; echo ready; while :; do sleep 0.1; done`;
    const run = await startCli(["lock", k, "--", "sh", "-c", script], { env: env(), deno: deno() });
    await run.printed("ready");
    const next = holder(k);
    const granted = next.acquire({ timeoutS: 60 }).then((ok) => {
      // The command wrote the marker before exiting; the lock must not have come free before.
      return { ok, marker: readFileSync(marker, "utf8").trim() };
    });
    await until(
      async () => (await stats({ port: server().port })).locks.find((l) => l.key === k)?.waiters === 1,
      30_000,
      "the second holder to queue",
    );
    run.signal("SIGTERM");
    expect((await run.exited).code).toBe(3);
    expect(await granted).toEqual({ ok: true, marker: "ended" });
    await next.release();
  });

  it("passes SIGINT, SIGHUP and SIGQUIT on to the command when it has no terminal", async () => {
    for (const [sig, code] of [
      ["SIGINT", 21],
      ["SIGHUP", 22],
      ["SIGQUIT", 23],
    ] as const) {
      const name = sig.slice(3);
      const script = `trap 'exit ${code}' ${name}; echo ready; while :; do sleep 0.1; done`;
      const run = await startCli(["lock", key(), "--", "sh", "-c", script], { env: env(), deno: deno() });
      await run.printed("ready");
      run.signal(sig);
      expect({ sig, code: (await run.exited).code }).toEqual({ sig, code });
    }
  });

  it("renews while the command runs past the lease", async () => {
    const k = key();
    const r = await runCli(["lock", k, "--lease", "2", "--", "sh", "-c", "sleep 3.5; echo done"], {
      env: env(),
      deno: deno(),
    });
    expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: "done\n" });
  });

  it("sem: holds one of --limit slots; busy when all are taken", async () => {
    const k = key("sem");
    const slots = [0, 1].map(() => new DistributedSemaphore({ key: k, limit: 2, servers: [server().address] }));
    expect(await slots[0]?.acquire()).toBe(true);
    const ok = await runCli(["sem", k, "--limit", "2", "--", "sh", "-c", "exit 5"], { env: env(), deno: deno() });
    expect(ok.code).toBe(5);
    expect(await slots[1]?.acquire()).toBe(true);
    const busy = await runCli(["sem", k, "--limit", "2", "--timeout", "0", "--", "true"], {
      env: env(),
      deno: deno(["true"]),
    });
    expect(busy.code).toBe(75);
    expect(busy.err).toContain(`semaphore "${k}"`);
    for (const s of slots) await s?.release();
  });
});

describe(`dflockd-client lock, lost lock (${RUNTIME})`, () => {
  /** Run `script` under a lock on a server of its own, kill the server once it printed "ready". */
  async function loseWhileRunning(options: string[], script: string) {
    const server = await startDflockd();
    const where = `127.0.0.1:${server.port}`;
    const run = await startCli(["lock", key(), ...options, "--", "sh", "-c", script], {
      env: { DFLOCKD_SERVERS: where },
      deno: { net: [where], run: ["sh"] },
    });
    await run.printed("ready");
    const t0 = performance.now();
    await server.kill();
    const end = await run.exited;
    return { code: end.code, ms: performance.now() - t0, err: run.err() };
  }
  const IGNORES_TERM = "trap '' TERM; echo ready; while :; do sleep 0.1; done";

  it("stops the command with SIGTERM and exits 76 when the server goes away", async () => {
    const r = await loseWhileRunning([], "echo ready; exec sleep 600");
    expect(r.code).toBe(76);
    // Stopped by SIGTERM, not by the end of its sleep (nor the 10 s grace: sleep dies of SIGTERM).
    expect(r.ms).toBeLessThan(9_000);
    expect(r.err).toMatch(/lock ".*" was lost .*; stopping the command/);
  });

  it("sends SIGKILL after --grace when the command ignores SIGTERM", async () => {
    const r = await loseWhileRunning(["--grace", "1"], IGNORES_TERM);
    expect(r.code).toBe(76);
    // Not before the grace period: SIGTERM alone did not stop it.
    expect(r.ms).toBeGreaterThanOrEqual(900);
  });

  it("--grace 0 sends SIGKILL at once", async () => {
    const r = await loseWhileRunning(["--grace", "0"], IGNORES_TERM);
    expect(r.code).toBe(76);
    // Well before the default grace (10 s), which SIGTERM alone would have waited out.
    expect(r.ms).toBeLessThan(8_000);
  });
});
