/**
 * Nothing of the library keeps a process alive once the user has released or
 * closed everything; a holding (a lock or permit held and never released, an
 * idle connection) never keeps it alive by itself either, while a request
 * waiting for its reply (a blocked acquire) does; and connect timeouts work.
 * Checked in child processes of the runtime under test (node, bun or deno)
 * against a scripted fake server and the dflockd double, which runs in this
 * test process (so children are spawned asynchronously, never with spawnSync).
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DoubleServer, startDouble } from "../double/server.ts";
import { testCerts } from "../harness/certs.ts";
import { DistributedLock, DistributedSemaphore, stats } from "../support/client.ts";
import { ROOT, RUNTIME, runFile, type ScriptedServer, scriptedServer } from "../support/runtime.ts";

const TMP = join(ROOT, ".test-tmp", RUNTIME);
let entry = join(ROOT, "mod.ts");
let server: ScriptedServer;
let tlsAuthServer: ScriptedServer;
let silentServer: ScriptedServer;
let double: DoubleServer;
const certs = testCerts();

beforeAll(async () => {
  mkdirSync(TMP, { recursive: true });
  if (RUNTIME === "node") {
    // Node 20 cannot run TypeScript: bundle the entry point.
    entry = join(TMP, "bundle.mjs");
    buildSync({
      entryPoints: [join(ROOT, "mod.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      outfile: entry,
      logLevel: "silent",
    });
  }
  server = await scriptedServer("ok");
  tlsAuthServer = await scriptedServer("ok", {
    tls: { certFile: certs.certFile, keyFile: certs.keyFile },
    auth: "sekrit",
  });
  silentServer = await scriptedServer("silent");
  double = await startDouble([]);
});

afterAll(async () => {
  server.stop();
  tlsAuthServer.stop();
  silentServer.stop();
  await double?.stop();
});

/** How a child process ended: exit code (`null` if it was killed), its output, its running time. */
interface Ended {
  code: number | null;
  out: string;
  ms: number;
}

/** A running child process. */
interface Running {
  /** Resolves when the process has ended. */
  readonly ended: Promise<Ended>;
  /** Whether it has ended yet. */
  exited(): boolean;
  /** Everything it has written so far. */
  output(): string;
}

let n = 0;
/**
 * Start `body` in a child process of this runtime, killed after `budgetMs`.
 * It sees `c` (the library), `port` (a scripted server), `secure` (a scripted
 * TLS server with auth), `wrongCa`, `silentPort` (a server that accepts and
 * never answers) and `dbl` (the double, for `servers`).
 */
function startChild(body: string, budgetMs = 5_000): Running {
  const file = join(TMP, `child-${++n}.mjs`);
  writeFileSync(
    file,
    [
      `import * as c from ${JSON.stringify(entry)};`,
      `const port = ${server.port};`,
      `const secure = { host: "localhost", port: ${tlsAuthServer.port}, tls: { ca: ${JSON.stringify(certs.ca)} } };`,
      `const wrongCa = ${JSON.stringify(certs.otherCa)};`,
      `const silentPort = ${silentServer.port};`,
      `const dbl = [[${JSON.stringify(double.host)}, ${double.port}]];`,
      body,
      `console.log("done");`,
    ].join("\n"),
  );
  const [cmd, args] = runFile(file);
  const t0 = Date.now();
  let out = "";
  let exited = false;
  const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  p.stdout.on("data", (d) => {
    out += d;
  });
  p.stderr.on("data", (d) => {
    out += d;
  });
  const timer = setTimeout(() => p.kill("SIGKILL"), budgetMs);
  const ended = new Promise<Ended>((resolve) => {
    p.on("exit", (code) => {
      clearTimeout(timer);
      exited = true;
      resolve({ code, out, ms: Date.now() - t0 });
    });
  });
  return { ended, exited: () => exited, output: () => out };
}

/** Run `body` in a child process of this runtime; resolve with how it ended. */
function child(body: string, budgetMs = 5_000): Promise<Ended> {
  return startChild(body, budgetMs).ended;
}

describe(`a ${RUNTIME} process exits on its own`, () => {
  it.each([
    [
      "after release()",
      `const l = new c.DistributedLock({ key: "k", port, leaseTtlS: 2 }); await l.acquire(); await l.release();`,
    ],
    ["after withLock()", `await new c.DistributedLock({ key: "k", port }).withLock(async () => {});`],
    ["after close() while held", `const l = new c.DistributedLock({ key: "k", port }); await l.acquire(); l.close();`],
    [
      "after close() while queued",
      `const l = new c.DistributedLock({ key: "k", port }); await l.enqueue(); l.close();`,
    ],
    [
      "after a timed-out acquire()",
      `const l = new c.DistributedLock({ key: "busy", port }); if (await l.acquire()) throw 1;`,
    ],
    [
      "after the lock is lost",
      `const l = new c.DistributedLock({ key: "drop", port, leaseTtlS: 1 }); await l.acquire();
       await new Promise((r) => { const t = setInterval(() => { if (l.state === "lost") { clearInterval(t); r(); } }, 10); });`,
    ],
    ["after stats()", `await c.stats({ port });`],
    [
      "after a low-level session",
      `const s = await c.connect({ port }); const g = await c.acquire(s, "k", 1); await c.release(s, "k", g.token); s.close();`,
    ],
    [
      "after a lock over TLS with auth",
      `await new c.DistributedLock({ key: "k", ...secure, auth: "sekrit" }).withLock(async () => {});`,
    ],
    [
      "after an auth failure",
      `const e = await new c.DistributedLock({ key: "k", ...secure, auth: "wrong" }).acquire().catch((x) => x); if (!(e instanceof c.AuthError)) throw e;`,
    ],
    [
      "after a certificate verification failure",
      `const e = await c.stats({ ...secure, tls: { ca: wrongCa } }).catch((x) => x); if (!(e instanceof c.ConnectionError)) throw e;`,
    ],
    [
      // On Deno the socket itself outlives the timeout (see connect-cleanup.test.ts), but must not hold the process.
      "after a TLS handshake that timed out",
      `const e = await c.connect({ host: "127.0.0.1", port: silentPort, tls: { ca: secure.tls.ca }, connectTimeoutMs: 300 }).catch((x) => x);
       if (e?.code !== "TIMEOUT") throw e;`,
    ],
    [
      "after renewals, once released",
      `const l = new c.DistributedLock({ key: "k", port, leaseTtlS: 1 }); await l.acquire(); await new Promise((r) => setTimeout(r, 1200)); if (!l.held) throw new Error("not held"); await l.release();`,
    ],
  ])("%s", async (_name, body) => {
    const r = await child(body);
    expect(r.out).toContain("done");
    expect(r.code, r.out).toBe(0);
    expect(r.ms).toBeLessThan(4_500);
  });
});

describe(`a holding never keeps a ${RUNTIME} process alive by itself`, () => {
  // The child never releases nor closes, and never calls process.exit: it
  // must end by itself, soon, and the server must then free what it held.
  it.each([
    [
      "a lock held, never released",
      `const l = new c.DistributedLock({ key: "k", port }); if (!(await l.acquire())) throw 1;`,
    ],
    [
      "a lock held over TLS with auth, never released",
      `const l = new c.DistributedLock({ key: "k", ...secure, auth: "sekrit" }); if (!(await l.acquire())) throw 1;`,
    ],
    [
      "a semaphore permit held, never released",
      `const s = new c.DistributedSemaphore({ key: "k", limit: 2, port }); if (!(await s.acquire())) throw 1;`,
    ],
    ["a place in a queue, never closed", `const l = new c.DistributedLock({ key: "k", port }); await l.enqueue();`],
    ["a connection, never closed", `await c.connect({ port });`],
    ["a TLS connection with auth, never closed", `await c.connect({ ...secure, auth: "sekrit" });`],
    [
      "a low-level grant, never released",
      `const s = await c.connect({ port }); await c.acquire(s, "k", 1); await c.stats(s);`,
    ],
  ])("%s", async (_name, body) => {
    const r = await child(body);
    expect(r.out).toContain("done");
    expect(r.code, r.out).toBe(0);
    expect(r.ms).toBeLessThan(4_500);
  });

  /** Acquire `key` from this process within 5 s (the child's holding must have been freed). */
  async function takeOver(key: string, limit?: number): Promise<boolean> {
    const servers: Array<[string, number]> = [[double.host, double.port]];
    const p =
      limit === undefined
        ? new DistributedLock({ key, servers, acquireTimeoutS: 5 })
        : new DistributedSemaphore({ key, limit, servers, acquireTimeoutS: 5 });
    const got = await p.acquire();
    if (got) await p.release();
    return got;
  }

  it("a lock held and never released: the process ends, and the server frees the lock", async () => {
    const key = `exit-lock-${RUNTIME}`;
    const r = await child(
      `const l = new c.DistributedLock({ key: ${JSON.stringify(key)}, servers: dbl });
       if (!(await l.acquire())) throw new Error("not granted"); console.log("held");`,
    );
    expect(r.out).toContain("held");
    expect(r.out).toContain("done");
    expect(r.code, r.out).toBe(0);
    expect(r.ms).toBeLessThan(4_500);
    expect(await takeOver(key)).toBe(true);
  });

  it("a semaphore permit held and never released: the process ends, and the server frees the permit", async () => {
    const key = `exit-sem-${RUNTIME}`;
    const r = await child(
      `const s = new c.DistributedSemaphore({ key: ${JSON.stringify(key)}, limit: 1, servers: dbl });
       if (!(await s.acquire())) throw new Error("not granted"); console.log("held");`,
    );
    expect(r.out).toContain("held");
    expect(r.code, r.out).toBe(0);
    expect(r.ms).toBeLessThan(4_500);
    expect(await takeOver(key, 1)).toBe(true);
  });

  it.each([
    ["DistributedLock", undefined],
    ["DistributedSemaphore", 1],
  ] as const)(
    "a %s held past renewals, then left: the process ends once the user's own wait is over",
    async (kind, limit) => {
      const key = `exit-renewed-${kind}-${RUNTIME}`;
      const limitOption = limit === undefined ? "" : `limit: ${limit}, `;
      // A 2 s lease is renewed about every second: holding 3 s takes renewals.
      const r = await child(
        `const p = new c.${kind}({ key: ${JSON.stringify(key)}, ${limitOption}servers: dbl, leaseTtlS: 2 });
       if (!(await p.acquire())) throw new Error("not granted");
       const t0 = Date.now();
       await new Promise((r) => setTimeout(r, 3000));
       console.log("held after", Date.now() - t0, "ms:", p.held);`,
        9_000,
      );
      expect(r.out).toMatch(/held after \d+ ms: true/);
      expect(r.out).toContain("done");
      expect(r.code, r.out).toBe(0);
      expect(r.ms).toBeGreaterThanOrEqual(3_000);
      expect(r.ms).toBeLessThan(7_000);
      expect(await takeOver(key, limit)).toBe(true);
    },
  );

  it.each([
    ["DistributedLock", undefined],
    ["DistributedSemaphore", 1],
  ] as const)(
    "a %s acquire() blocked in the queue keeps the process alive until it is granted",
    async (kind, limit) => {
      const key = `exit-blocked-${kind}-${RUNTIME}`;
      const servers: Array<[string, number]> = [[double.host, double.port]];
      const holder =
        limit === undefined ? new DistributedLock({ key, servers }) : new DistributedSemaphore({ key, limit, servers });
      expect(await holder.acquire()).toBe(true);
      const limitOption = limit === undefined ? "" : `limit: ${limit}, `;
      // The child never releases: once granted it ends (holding alone keeps nothing alive).
      const running = startChild(
        `const p = new c.${kind}({ key: ${JSON.stringify(key)}, ${limitOption}servers: dbl, acquireTimeoutS: 30 });
       console.log("granted", await p.acquire());`,
        20_000,
      );
      try {
        // Wait for the child's request to be queued on the server...
        const t0 = Date.now();
        for (;;) {
          const s = await stats({ host: double.host, port: double.port });
          const entry = [...s.locks, ...s.semaphores].find((e) => e.key === key);
          if ((entry?.waiters ?? 0) > 0) break;
          if (running.exited() || Date.now() - t0 > 10_000) {
            throw new Error(`the child never queued: ${running.output()}`);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        // ...then give it time to end, which it must not do: its acquire() is waiting.
        await new Promise((r) => setTimeout(r, 1_500));
        expect(running.exited(), running.output()).toBe(false);
      } finally {
        await holder.release();
      }
      const r = await running.ended;
      expect(r.out).toContain("granted true");
      expect(r.out).toContain("done");
      expect(r.code, r.out).toBe(0);
      expect(await takeOver(key, limit)).toBe(true);
    },
  );
});

describe("connect timeout", () => {
  // The child exits explicitly: Bun cannot abort a pending Bun.connect, so on
  // Bun the abandoned handshake keeps the process alive until the kernel gives
  // up on it (see README, "Known limitations"). The error itself is prompt.
  it("a server that never completes the TCP handshake fails within connectTimeoutMs (plain, and TLS with a client certificate)", async () => {
    // A listener with backlog 0 that never accepts: the first connection fills
    // its queue, and the kernel drops the handshake of the next one.
    const py = spawn(
      "python3",
      [
        "-c",
        "import socket,sys,time\ns=socket.socket();s.bind(('127.0.0.1',0));s.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const stallPort = await new Promise<number>((resolve, reject) => {
        py.stdout.once("data", (d) => resolve(Number(String(d).trim())));
        py.once("error", (e) => reject(new Error(`python3 is needed for this test: ${e.message}`)));
      });
      const filler = net.createConnection({ host: "127.0.0.1", port: stallPort });
      await new Promise((r) => filler.once("connect", r));
      const r = await child(
        `for (const tls of [undefined, { ca: secure.tls.ca, cert: ${JSON.stringify(certs.cert)}, key: ${JSON.stringify(certs.key)} }]) {
           const t0 = Date.now();
           const err = await new c.DistributedLock({ key: "k", host: "127.0.0.1", port: ${stallPort}, tls, connectTimeoutMs: 300 })
             .acquire().catch((e) => e);
           if (!(err instanceof c.ConnectionError) || err.code !== "TIMEOUT") throw new Error("wrong error: " + err);
           if (Date.now() - t0 > 1500) throw new Error("too slow: " + (Date.now() - t0));
         }
         console.log("done");
         process.exit(0);`,
      );
      filler.destroy();
      expect(r.out).toContain("done");
      expect(r.code, r.out).toBe(0);
    } finally {
      py.kill("SIGKILL");
    }
  });
});
