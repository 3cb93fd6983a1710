/**
 * Nothing of the library keeps a process alive once the user has released or
 * closed everything, and connect timeouts work: checked in child Node
 * processes against a scripted fake server over loopback TCP.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const BUNDLE = join(ROOT, ".test-tmp", "node-bundle.mjs");
const TOKEN = "0123456789abcdef0123456789abcdef";

let server: net.Server;
let port = 0;

beforeAll(async () => {
  mkdirSync(join(ROOT, ".test-tmp"), { recursive: true });
  buildSync({
    entryPoints: [join(ROOT, "adapters", "node", "index.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: BUNDLE,
    logLevel: "silent",
  });
  // Scripted fake server: grants every l/e/w, answers r and n, and drops the
  // connection on "n" for key "drop".
  server = net.createServer((sock) => {
    let buf = "";
    sock.on("error", () => {});
    sock.on("data", (d) => {
      buf += d.toString();
      let lines = buf.split("\n");
      while (lines.length >= 4) {
        const [cmd, key] = lines as [string, string];
        if (cmd === "l" || cmd === "w") sock.write(key === "busy" ? "timeout\n" : `ok ${TOKEN} 2\n`);
        else if (cmd === "e") sock.write("queued\n");
        else if (cmd === "r") sock.write("ok\n");
        else if (cmd === "n") key === "drop" ? sock.destroy() : sock.write("ok 2\n");
        else if (cmd === "stats") sock.write('ok {"connections":1,"locks":[],"semaphores":[]}\n');
        lines = lines.slice(3);
      }
      buf = lines.join("\n");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

/** Run `body` in a child process; resolve with how it ended. */
function child(body: string, budgetMs = 5_000): Promise<{ code: number | null; out: string; ms: number }> {
  const script = `import * as c from ${JSON.stringify(BUNDLE)};\nconst port = ${port};\n${body}\nconsole.log("done");`;
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
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

describe("the process exits on its own", () => {
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
      "while a lock is renewed in the background... once released",
      `const l = new c.DistributedLock({ key: "k", port, leaseTtlS: 1 }); await l.acquire(); await new Promise((r) => setTimeout(r, 1200)); await l.release();`,
    ],
  ])("%s", async (_name, body) => {
    const r = await child(body);
    expect(r.out).toContain("done");
    expect(r.code, r.out).toBe(0);
    expect(r.ms).toBeLessThan(4_000);
  });

  it("a held lock does keep the process alive (the check above can fail)", async () => {
    const r = await child(`const l = new c.DistributedLock({ key: "k", port }); await l.acquire();`, 1_500);
    expect(r.code).toBeNull();
  });
});

describe("connect timeout", () => {
  it("a server that never completes the TCP handshake fails within connectTimeoutMs", async () => {
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
        py.once("error", reject);
      });
      const filler = net.createConnection({ host: "127.0.0.1", port: stallPort });
      await new Promise((r) => filler.once("connect", r));
      const r = await child(
        `const port2 = ${stallPort}; const t0 = Date.now();
         const err = await new c.DistributedLock({ key: "k", port: port2, connectTimeoutMs: 300 }).acquire().catch((e) => e);
         if (!(err instanceof c.ConnectionError) || err.code !== "TIMEOUT") throw new Error("wrong error: " + err);
         if (Date.now() - t0 > 1500) throw new Error("too slow");`,
      );
      filler.destroy();
      expect(r.out).toContain("done");
      expect(r.code, r.out).toBe(0);
    } finally {
      py.kill("SIGKILL");
    }
  });
});

it("python3 is available for the connect-timeout test", () => {
  expect(spawnSync("python3", ["--version"]).status).toBe(0);
});
