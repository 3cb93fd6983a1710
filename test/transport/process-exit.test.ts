/**
 * Nothing of the library keeps a process alive once the user has released or
 * closed everything, and connect timeouts work: checked in child processes of
 * the runtime under test (node, bun or deno) against a scripted fake server.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testCerts } from "../harness/certs.ts";
import { ROOT, RUNTIME, runFile, type ScriptedServer, scriptedServer } from "../support/runtime.ts";

const TMP = join(ROOT, ".test-tmp", RUNTIME);
let entry = join(ROOT, "mod.ts");
let server: ScriptedServer;
let tlsAuthServer: ScriptedServer;
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
});

afterAll(() => {
  server.stop();
  tlsAuthServer.stop();
});

let n = 0;
/** Run `body` in a child process of this runtime; resolve with how it ended. */
function child(body: string, budgetMs = 5_000): Promise<{ code: number | null; out: string; ms: number }> {
  const file = join(TMP, `child-${++n}.mjs`);
  writeFileSync(
    file,
    [
      `import * as c from ${JSON.stringify(entry)};`,
      `const port = ${server.port};`,
      `const secure = { host: "localhost", port: ${tlsAuthServer.port}, tls: { ca: ${JSON.stringify(certs.ca)} } };`,
      `const wrongCa = ${JSON.stringify(certs.otherCa)};`,
      body,
      `console.log("done");`,
    ].join("\n"),
  );
  const [cmd, args] = runFile(file);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.stderr.on("data", (d) => {
      out += d;
    });
    const timer = setTimeout(() => p.kill("SIGKILL"), budgetMs);
    p.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: Date.now() - t0 });
    });
  });
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
      "after renewals, once released",
      `const l = new c.DistributedLock({ key: "k", port, leaseTtlS: 1 }); await l.acquire(); await new Promise((r) => setTimeout(r, 1200)); if (!l.held) throw new Error("not held"); await l.release();`,
    ],
  ])("%s", async (_name, body) => {
    const r = await child(body);
    expect(r.out).toContain("done");
    expect(r.code, r.out).toBe(0);
    expect(r.ms).toBeLessThan(4_500);
  });

  it("a held lock does keep the process alive (so the checks above can fail)", async () => {
    const r = await child(`const l = new c.DistributedLock({ key: "k", port }); await l.acquire();`, 2_000);
    expect(r.out).toContain("done");
    expect(r.code).toBeNull();
  });
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
