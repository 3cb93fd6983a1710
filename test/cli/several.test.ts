/**
 * `lock --key A --key B` (and `sem`): several keys held together, all or
 * none, through the command line as a child process of the runtime under
 * test: while a command runs, without one, busy, and two runs that name
 * overlapping keys in different orders.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { key, useDflockd } from "../integration/helpers.ts";
import { DistributedLock, DistributedSemaphore, stableHashShard, stats } from "../support/client.ts";
import { RUNTIME } from "../support/runtime.ts";
import { type DenoPermissions, runCli, startCli } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "dflockd-cli-several-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Prints the four variables on one line, `|` between them (`unset` for an absent one), then "ready". */
const TELL =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell's parameter expansion, not a template
  'echo "${DFLOCKD_KEY-unset}|${DFLOCKD_SERVER-unset}|${DFLOCKD_FENCE-unset}|${DFLOCKD_LEASE-unset}"; echo ready';

describe(`dflockd-client lock with several keys (${RUNTIME})`, () => {
  const server = useDflockd();
  const where = () => `127.0.0.1:${server().port}`;
  const env = () => ({ DFLOCKD_SERVERS: where() });
  const deno = (): DenoPermissions => ({ net: [where()], run: ["sh"] });
  const other = (k: string) => new DistributedLock({ key: k, servers: [server().address] });
  /** Whether another client can take `k` right now (and then lets it go). */
  const free = async (k: string): Promise<boolean> => {
    const o = other(k);
    const ok = await o.acquire({ timeoutS: 0 });
    if (ok) await o.release();
    return ok;
  };

  it("holds both keys while the command runs, tells it both in the order taken, and frees both after", async () => {
    const base = key();
    const [a, b] = [`${base}-a`, `${base}-b`];
    const marker = join(dir, `go-${base}`);
    const script = `${TELL}; while [ ! -e ${marker} ]; do sleep 0.1; done; exit 6`;
    // Given b first: taken (and told) in the canonical order, by server, then by key.
    const run = await startCli(["lock", "--key", b, "--key", a, "--lease", "9", "--", "sh", "-c", script], {
      env: { ...env(), DFLOCKD_FENCE: "999" },
      deno: deno(),
    });
    await run.printed("ready");
    const [k, s, fence, lease] = (run.out().split("\n")[0] as string).split("|");
    expect({ k, s, lease }).toEqual({ k: `${a} ${b}`, s: `${where()} ${where()}`, lease: "9 9" });
    // dflockd v1.10.0 and the double send no fence: removed (Deno without a plain --allow-env empties it).
    expect(fence === (RUNTIME === "deno" ? "" : "unset") || /^\d+ \d+$/.test(fence as string)).toBe(true);
    expect(await free(a)).toBe(false);
    expect(await free(b)).toBe(false);
    writeFileSync(marker, "");
    expect((await run.exited).code).toBe(6);
    expect(await free(a)).toBe(true);
    expect(await free(b)).toBe(true);
  });

  it("sem with several keys: a slot of each, every one with --limit N", async () => {
    const base = key("sem");
    const [a, b] = [`${base}-a`, `${base}-b`];
    const taken = new DistributedSemaphore({ key: b, limit: 1, servers: [server().address] });
    const r = await runCli(["sem", "--key", a, "--key", b, "--limit", "1", "--", "sh", "-c", TELL], {
      env: env(),
      deno: deno(),
    });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^${a} ${b}\\|`));
    expect(await taken.acquire({ timeoutS: 0 })).toBe(true); // released after the command
    await taken.release();
  });

  it("busy when one key is held elsewhere: names it, runs nothing, and leaves the other key free", async () => {
    const base = key();
    const [a, b] = [`${base}-a`, `${base}-b`];
    const h = other(b);
    expect(await h.acquire()).toBe(true);
    try {
      const marker = join(dir, `ran-${base}`);
      for (const timeout of ["1", "500ms"]) {
        // a is taken first (canonical order), then b is not had in time: a must be released again.
        const r = await runCli(["lock", "--key", a, "--key", b, "--timeout", timeout, "--", "touch", marker], {
          env: env(),
          deno: { net: [where()], run: ["touch"] },
        });
        expect({ timeout, code: r.code }).toEqual({ timeout, code: 75 });
        const within = timeout === "1" ? "1s" : "500ms";
        expect(r.err).toContain(
          `busy: lock "${b}" on ${where()} was not free within ${within} (one of 2 keys; none is held)`,
        );
        expect(existsSync(marker)).toBe(false);
        expect((await stats({ port: server().port })).locks.some((l) => l.key === a)).toBe(false);
      }
    } finally {
      await h.release();
    }
  });

  it("without a command: one line per key in the order taken, holds both until SIGTERM, then frees both", async () => {
    const base = key();
    const [a, b] = [`${base}-a`, `${base}-b`];
    const run = await startCli(["lock", "--key", b, "--key", a, "--lease", "3"], {
      env: env(),
      deno: { net: [where()] },
    });
    await run.printed(`key=${b} `);
    const at = where().replaceAll(".", "\\.");
    expect(run.out()).toMatch(
      new RegExp(`^key=${a} server=${at} fence=\\d* lease=3\\nkey=${b} server=${at} fence=\\d* lease=3\\n$`),
    );
    expect(await free(a)).toBe(false);
    expect(await free(b)).toBe(false);
    run.signal("SIGTERM");
    expect((await run.exited).code).toBe(0);
    expect(await free(a)).toBe(true);
    expect(await free(b)).toBe(true);
  });

  it("two runs with overlapping keys given in different orders both complete, one after the other", async () => {
    const base = key();
    const [a, b] = [`${base}-a`, `${base}-b`];
    const file = join(dir, `overlap-${base}`);
    const fd = openSync(file, "a");
    try {
      const cmd = ["--timeout", "30", "--", "sh", "-c", "echo start; sleep 1; echo end"];
      const orders = [
        ["--key", a, "--key", b],
        ["--key", b, "--key", a],
      ];
      const runs = await Promise.all(
        orders.map((keys) => startCli(["lock", ...keys, ...cmd], { env: env(), deno: deno(), stdoutFd: fd })),
      );
      const ends = await Promise.all(runs.map((r) => r.exited));
      expect(ends.map((e) => e.code)).toEqual([0, 0]);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, "utf8")).toBe("start\nend\nstart\nend\n");
  });
});

describe(`dflockd-client lock with several keys on two servers (${RUNTIME})`, () => {
  it("a loss of one key stops the command (76), naming that key; the other key is free afterwards", async () => {
    const kept = await startDflockd();
    const lost = await startDflockd();
    try {
      const at = [kept, lost].map((s) => `127.0.0.1:${s.port}`);
      // One key on each server, as the client shards them.
      let n = 0;
      const on = (i: number): string => {
        for (;;) {
          const k = `${key()}-${n++}`;
          if (stableHashShard(k, 2) === i) return k;
        }
      };
      const [a, b] = [on(0), on(1)];
      const run = await startCli(["lock", "--key", b, "--key", a, "--", "sh", "-c", `${TELL}; exec sleep 600`], {
        env: { DFLOCKD_SERVERS: at.join(",") },
        deno: { net: at, run: ["sh"] },
      });
      await run.printed("ready");
      // Taken by server (in --servers order), then by key.
      expect((run.out().split("\n")[0] as string).split("|").slice(0, 2)).toEqual([`${a} ${b}`, at.join(" ")]);
      await lost.kill();
      const end = await run.exited;
      expect(end.code).toBe(76);
      expect(run.err()).toContain(`lock "${b}" was lost`);
      const other = new DistributedLock({ key: a, servers: [kept.address] });
      expect(await other.acquire({ timeoutS: 10 })).toBe(true);
      await other.release();
    } finally {
      await kept.stop();
      await lost.stop();
    }
  });
});

describe(`dflockd-client lock with several keys and fences (${RUNTIME})`, () => {
  let server: DflockdServer;
  afterAll(() => server?.stop());

  it("DFLOCKD_FENCE lists each key's fence in the order taken", async () => {
    // The double with the fence of later dflockd builds (dflockd v1.10.0 sends none).
    server = await startDflockd([], "double", { fence: true });
    const where = `127.0.0.1:${server.port}`;
    const base = key();
    const r = await runCli(["lock", "--key", `${base}-b`, "--key", `${base}-a`, "--", "sh", "-c", TELL], {
      env: { DFLOCKD_SERVERS: where },
      deno: { net: [where], run: ["sh"] },
    });
    expect(r.code).toBe(0);
    const [k, , fence] = (r.out.split("\n")[0] as string).split("|");
    expect(k).toBe(`${base}-a ${base}-b`);
    expect(fence).toMatch(/^\d+ \d+$/);
  });
});
