/**
 * Packaging smoke test: pack the npm tarball, install it into an empty
 * project, and take and release a lock from Node ESM, Node CommonJS, Bun and
 * Deno (`npm:` specifier), plus the JSR layout from Deno by path, each in a
 * child process of its own runtime. The server is the run's dflockd (a real
 * one when found, else the double; see test/harness). The testing entry
 * (`dflockd-client/testing`) is used as a user's tests would: from
 * `node --test`, `bun test` and `deno test`, each starting its own server.
 * The package carries one core per format: every subpath of a format loads
 * the same one, and the ESM and CommonJS copies recognise each other's errors.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { ROOT, runChild } from "../support/runtime.ts";

const BIN = join(ROOT, "node_modules", ".bin");
let dir = "";
let server: DflockdServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dflockd-smoke-"));
  const packed = execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: ROOT, encoding: "utf8" })
    .trim()
    .split("\n")
    .pop() as string;
  const app = join(dir, "app");
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "smoke-app", private: true, dependencies: { "dflockd-client": `file:../${packed}` } }),
  );
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent"], { cwd: app, stdio: "inherit" });
  server = await startDflockd();
}, 180_000);

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Lock, release, and report which adapter ran; `breakNodeNet` makes node:net unusable first. */
function script(importLine: string, breakNodeNet: boolean): string {
  return [
    breakNodeNet
      ? `import { Socket } from "node:net"; Socket.prototype.connect = () => { throw new Error("node:net used"); };`
      : "",
    importLine,
    // Only this package (not another release of the same name) has these.
    `if (typeof LockLostError !== "function" || typeof InvalidArgumentError !== "function") throw new Error("wrong package");`,
    `const lock = new DistributedLock({ key: "smoke", port: ${server.port} });`,
    `if (!(await lock.acquire())) throw new Error("not acquired");`,
    `await lock.release();`,
    `console.log("ok", lock.state);`,
  ].join("\n");
}

/** Run `body` as `file` with `cmd`; asynchronously, since the server may live in this very process. */
async function run(cmd: string, args: string[], file: string, body: string): Promise<string> {
  const path = join(dir, "app", file);
  writeFileSync(path, body);
  const r = await runChild(cmd, [...args, path], { cwd: join(dir, "app"), timeout: 60_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${file} failed (${r.code}):\n${r.out}\n${r.err}`);
  return r.out;
}

describe("the packed npm tarball", () => {
  it("works from Node ESM", async () => {
    expect(
      await run(
        "node",
        [],
        "esm.mjs",
        script(`import { DistributedLock, LockLostError, InvalidArgumentError } from "dflockd-client";`, false),
      ),
    ).toContain("ok released");
  });

  it("works from Node CommonJS (require)", async () => {
    const body = script(
      `const { DistributedLock, LockLostError, InvalidArgumentError } = require("dflockd-client");`,
      false,
    )
      .replace(/^/, "(async () => {\n")
      .concat("\n})().catch((e) => { console.error(e); process.exit(1); });");
    expect(await run("node", [], "cjs.cjs", body)).toContain("ok released");
  });

  it("works from Bun, with Bun's own sockets", async () => {
    expect(
      await run(
        join(BIN, "bun"),
        [],
        "bun.mjs",
        script(
          `const { DistributedLock, LockLostError, InvalidArgumentError } = await import("dflockd-client");`,
          true,
        ),
      ),
    ).toContain("ok released");
  });

  it("works from Deno through an npm: specifier, with Deno's own sockets", async () => {
    expect(
      await run(
        join(BIN, "deno"),
        ["run", "-A", "--quiet", "--node-modules-dir=manual"],
        "deno.mjs",
        script(
          `const { DistributedLock, LockLostError, InvalidArgumentError } = await import("npm:dflockd-client");`,
          true,
        ),
      ),
    ).toContain("ok released");
  });
});

describe("one core per format, one error family across formats", () => {
  it("unpacks to under 1 MB", () => {
    const installed = join(dir, "app", "node_modules", "dflockd-client");
    const size = (p: string): number =>
      statSync(p).isDirectory() ? readdirSync(p).reduce((n, f) => n + size(join(p, f)), 0) : statSync(p).size;
    expect(size(installed)).toBeLessThan(1_000_000);
  });

  it("gives every subpath of a format the same core: one LockError, one DflockdClient", async () => {
    // Class identity only: nothing connects, so loading the Bun and Deno entries on Node is harmless.
    const body = [
      `const { createRequire } = require("node:module");`,
      `(async () => {`,
      `  const subpaths = ["dflockd-client", "dflockd-client/node", "dflockd-client/bun", "dflockd-client/deno"];`,
      `  const cjs = subpaths.map((s) => require(s));`,
      `  const esm = await Promise.all(subpaths.map((s) => import(s)));`,
      `  const same = (mods, name) => mods.every((m) => typeof m[name] === "function" && m[name] === mods[0][name]);`,
      `  console.log(JSON.stringify({`,
      `    cjs: same(cjs, "LockError") && same(cjs, "DflockdClient"),`,
      `    esm: same(esm, "LockError") && same(esm, "DflockdClient"),`,
      `    twoFormats: cjs[0].LockError !== esm[0].LockError,`,
      `  }));`,
      `})().catch((e) => { console.error(e); process.exit(1); });`,
    ].join("\n");
    expect(JSON.parse(await run("node", [], "one-core.cjs", body))).toEqual({ cjs: true, esm: true, twoFormats: true });
  });

  it("in one Node process, require('dflockd-client') and import('dflockd-client/node') recognise each other's errors", async () => {
    const body = [
      `const cjs = require("dflockd-client");`,
      `(async () => {`,
      `  const esm = await import("dflockd-client/node");`,
      `  if (cjs.LockError === esm.LockError) throw new Error("one copy: nothing to test");`,
      `  const servers = [["127.0.0.1", ${server.port}]];`,
      `  const seen = {};`,
      `  for (const [name, holder, trier] of [["cjsHolds", cjs, esm], ["esmHolds", esm, cjs]]) {`,
      `    const key = "smoke-brand-" + name;`,
      `    const held = new holder.DistributedLock({ key, servers });`,
      `    if (!(await held.acquire())) throw new Error("not acquired");`,
      `    const busy = await new trier.DistributedLock({ key, servers }).withLock(() => "ran", { timeoutS: 0 }).catch((e) => e);`,
      `    await held.release();`,
      `    let bad; try { new trier.DistributedLock({ key: "has space", servers }); } catch (e) { bad = e; }`,
      `    // Made by the trier's copy; told apart by the holder's classes, and the trier's own.`,
      `    seen[name] = [`,
      `      busy instanceof holder.LockError, busy instanceof holder.AcquireTimeoutError,`,
      `      busy instanceof trier.LockError, busy instanceof trier.AcquireTimeoutError,`,
      `      !(busy instanceof holder.LockLostError), !(busy instanceof holder.InvalidArgumentError),`,
      `      bad instanceof holder.LockError, bad instanceof holder.InvalidArgumentError,`,
      `      !(bad instanceof holder.AcquireTimeoutError), !(bad instanceof holder.ServerError),`,
      `      !(new Error("x") instanceof holder.LockError), !({ code: "BUSY" } instanceof holder.LockError),`,
      `    ];`,
      `  }`,
      `  console.log(JSON.stringify(seen));`,
      `})().catch((e) => { console.error(e); process.exit(1); });`,
    ].join("\n");
    const all = Array(12).fill(true);
    expect(JSON.parse(await run("node", [], "brand.cjs", body))).toEqual({ cjsHolds: all, esmHolds: all });
  });
});

describe("the packed command line (package.json bin)", () => {
  /** Run the installed bin as `how` does, with `args`; its stdout. */
  async function bin(cmd: string, args: string[]): Promise<string> {
    const r = await runChild(cmd, args, { cwd: join(dir, "app"), timeout: 60_000 });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}):\n${r.out}\n${r.err}`);
    return r.out;
  }
  const where = () => `127.0.0.1:${server.port}`;

  it("runs with npx on Node, holding a lock around a command", async () => {
    expect(await bin("npx", ["--no-install", "dflockd-client", "--version"])).toMatch(
      /^dflockd-client \d+\.\d+\.\d+ \(node [\d.]+: node:net, node:child_process\)\n$/,
    );
    const out = await bin("npx", [
      "--no-install",
      "dflockd-client",
      "lock",
      "smoke-cli",
      "--servers",
      where(),
      "--",
      "echo",
      "held",
    ]);
    expect(out).toBe("held\n");
  });

  /**
   * Start the installed bin's `serve` on a free port as `cmd args` does, hold a lock against it with the
   * installed bin, then SIGTERM it: it must end (and, where nothing stands between, exit 0 after its drain;
   * npx relays the signal and then ends by it itself).
   */
  async function serveAndLock(cmd: string, args: string[], exitCodes: (number | null)[]): Promise<void> {
    // A process group of its own: the signal reaches the server itself, not only the launcher (npx ended by
    // the signal before relaying it, and the server it had started stayed behind, listening, after the run).
    const child = spawn(cmd, [...args, "serve", "--port", "0"], {
      cwd: join(dir, "app"),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const group = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-(child.pid as number), signal);
      } catch {
        // The whole group has ended.
      }
    };
    let port = "";
    let err = "";
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      port = await new Promise<string>((resolve, reject) => {
        child.stderr.on("data", (d: Buffer) => {
          err += d.toString();
          const m = /msg=listening addr=127\.0\.0\.1:(\d+)/.exec(err);
          if (m) resolve(m[1] as string);
        });
        void exited.then((code) => reject(new Error(`serve exited (${code}) before listening:\n${err}`)));
      });
      expect(err).toMatch(/development server/i);
      const out = await bin(cmd, [
        ...args,
        "lock",
        "smoke-serve",
        "--servers",
        `127.0.0.1:${port}`,
        "--",
        "echo",
        "held",
      ]);
      expect(out).toBe("held\n");
      group("SIGTERM");
      expect(exitCodes).toContain(await exited);
      // The server has stopped listening too, whatever started it.
      expect(await refusedWithin(Number(port), 10_000)).toBe(true);
    } finally {
      group("SIGKILL");
    }
  }

  /** Whether connecting to `port` is refused within `ms` (the server there has ended). */
  async function refusedWithin(port: number, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const refused = await new Promise<boolean>((resolve) => {
        const s = connect({ host: "127.0.0.1", port });
        s.once("connect", () => {
          s.destroy();
          resolve(false);
        });
        s.once("error", () => resolve(true));
      });
      if (refused) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /**
   * Issue 20's command line through the installed bin, as `cmd args` runs it: `lock KEY` without a command
   * holds (its line on stdout) until SIGTERM; meanwhile a `--timeout 500ms` run is busy with the
   * `--conflict-exit-code` given, and free again after; then several keys are held around a command that
   * reads what it holds from its environment. The process group gets the SIGTERM, so a launcher (npx,
   * `bun x`) may end by it before the command line's own status reaches it: `holderExit` lists what counts.
   */
  async function newFeatures(
    cmd: string,
    args: string[],
    prefix: string,
    holderExit: (number | null)[],
  ): Promise<void> {
    const servers = ["--servers", where()];
    const holder = spawn(cmd, [...args, "lock", `${prefix}-held`, ...servers], {
      cwd: join(dir, "app"),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const group = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-(holder.pid as number), signal);
      } catch {
        // The whole group has ended.
      }
    };
    const exited = new Promise<number | null>((resolve) => holder.once("exit", (code) => resolve(code)));
    try {
      let out = "";
      let err = "";
      holder.stderr.on("data", (d: Buffer) => {
        err += d.toString();
      });
      const line = await new Promise<string>((resolve, reject) => {
        holder.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(out);
        });
        void exited.then((code) => reject(new Error(`lock without a command exited (${code}):\n${out}\n${err}`)));
      });
      expect(line).toBe(`key=${prefix}-held server=${where()} fence= lease=33\n`);
      const busy = await runChild(
        cmd,
        [
          ...args,
          "lock",
          `${prefix}-held`,
          ...servers,
          "--timeout",
          "500ms",
          "--conflict-exit-code",
          "9",
          "--",
          "true",
        ],
        { cwd: join(dir, "app"), timeout: 60_000 },
      );
      expect(busy.code, busy.err).toBe(9);
      group("SIGTERM");
      expect(holderExit).toContain(await exited);
    } finally {
      group("SIGKILL");
    }
    // Released on SIGTERM: the key is free again (the launcher's own status may be its signal's).
    expect(
      await bin(cmd, [...args, "lock", `${prefix}-held`, ...servers, "--timeout", "5", "--", "echo", "free"]),
    ).toBe("free\n");
    const env = 'echo "$DFLOCKD_KEY|$DFLOCKD_SERVER|$DFLOCKD_LEASE|$DFLOCKD_AUTH_TOKEN"';
    const out = await bin(cmd, [
      ...args,
      "lock",
      "--key",
      `${prefix}-b`,
      "--key",
      `${prefix}-a`,
      ...servers,
      "--",
      "sh",
      "-c",
      env,
    ]);
    expect(out).toBe(`${prefix}-a ${prefix}-b|${where()} ${where()}|33 33|\n`);
  }

  it("npx dflockd-client: holding without a command, units, a busy status of one's own, several keys, env", async () => {
    await newFeatures("npx", ["--no-install", "dflockd-client"], "smoke-npx", [0, null]);
  });

  it("bunx --bun dflockd-client: the same on Bun", async () => {
    await newFeatures(join(BIN, "bun"), ["x", "--bun", "dflockd-client"], "smoke-bunx", [0, 143]);
  });

  it("npx dflockd-client serve gives a server to lock against, and ends on SIGTERM", async () => {
    await serveAndLock("npx", ["--no-install", "dflockd-client"], [0, null]);
  });

  it("bunx --bun dflockd-client serve does too, on Bun's own listener, and exits 0 after its drain", async () => {
    await serveAndLock(join(BIN, "bun"), ["x", "--bun", "dflockd-client"], [0]);
  });

  it("runs with bunx --bun on Bun's own sockets and Bun.spawn", async () => {
    const bunx = [join(BIN, "bun"), ["x", "--bun", "dflockd-client"]] as const;
    expect(await bin(bunx[0], [...bunx[1], "--version"])).toContain("Bun.connect, Bun.spawn");
    expect(await bin(bunx[0], [...bunx[1], "stats", "--json", "--servers", where()])).toMatch(/"ok": true/);
  });
});

describe("the JSR layout", () => {
  it("works from Deno by path (mod.ts), with Deno's own sockets", async () => {
    const entry = JSON.stringify(`file://${join(ROOT, "mod.ts")}`);
    expect(
      await run(
        join(BIN, "deno"),
        ["run", "-A", "--quiet"],
        "jsr.mjs",
        script(`const { DistributedLock, LockLostError, InvalidArgumentError } = await import(${entry});`, true),
      ),
    ).toContain("ok released");
  });
});

/**
 * The body every runtime's test runs: start a test server, hold a lock, see a
 * second instance fail a try and wait its turn, stop the server, and find the
 * port refusing connections. Plain JavaScript, for any test runner.
 */
const SCENARIO = `
async function scenario({ startTestServer, DistributedLock, AcquireTimeoutError }, refused) {
  const server = await startTestServer();
  try {
    const options = { key: "smoke-testing", servers: server.servers };
    const first = new DistributedLock(options);
    const second = new DistributedLock(options);
    if (!(await first.acquire())) throw new Error("first: not acquired");
    const busy = await second.withLock(() => "ran", { timeoutS: 0 }).catch((e) => e);
    if (!(busy instanceof AcquireTimeoutError)) throw new Error("second's try: " + String(busy));
    const waiting = second.acquire({ timeoutS: 30 });
    const early = await Promise.race([waiting, new Promise((r) => setTimeout(() => r("waiting"), 200))]);
    if (early !== "waiting") throw new Error("second got past first's hold: " + String(early));
    const held = (await server.stats()).locks.map((l) => l.key);
    if (held.join() !== "smoke-testing") throw new Error("stats: " + JSON.stringify(held));
    await first.release();
    if ((await waiting) !== true) throw new Error("second: not granted after first's release");
    await second.release();
  } finally {
    await server.stop();
  }
  if (!(await refused(server.host, server.port))) throw new Error("still listening on " + server.port + " after stop()");
}
`;

describe("the packed testing entry (dflockd-client/testing)", () => {
  /** Run a test file with a runtime's test runner; its output, having checked it passed `passes` tests. */
  async function runner(cmd: string, args: string[], file: string, body: string, passes: RegExp): Promise<string> {
    writeFileSync(join(dir, "app", file), body);
    const r = await runChild(cmd, [...args, `./${file}`], { cwd: join(dir, "app"), timeout: 60_000 });
    // Without colours, which Deno's runner prints even to a pipe.
    const all = `${r.out}\n${r.err}`.replace(/\x1b\[[\d;]*m/g, "");
    if (r.code !== 0 || !passes.test(all)) throw new Error(`${cmd} ${file} failed (${r.code}):\n${all}`);
    return all;
  }

  it("runs under node --test, imported (ESM) and required (CommonJS)", async () => {
    const body = [
      `import { test } from "node:test";`,
      `import { connect } from "node:net";`,
      `import { createRequire } from "node:module";`,
      `import * as esm from "dflockd-client";`,
      `import { startTestServer } from "dflockd-client/testing";`,
      SCENARIO,
      `const refused = (host, port) => new Promise((resolve, reject) => {`,
      `  const s = connect(port, host);`,
      `  s.once("connect", () => { s.destroy(); resolve(false); });`,
      `  s.once("error", (e) => (e.code === "ECONNREFUSED" ? resolve(true) : reject(e)));`,
      `});`,
      `test("ESM", async () => { await scenario({ ...esm, startTestServer }, refused); });`,
      `test("CommonJS", async () => {`,
      `  const require = createRequire(import.meta.url);`,
      `  await scenario({ ...require("dflockd-client"), ...require("dflockd-client/testing") }, refused);`,
      `});`,
    ].join("\n");
    await runner("node", ["--test", "--test-reporter=tap"], "testing.node.test.mjs", body, /^# pass 2\n# fail 0$/m);
  });

  it("runs under bun test", async () => {
    const body = [
      `import { test } from "bun:test";`,
      `import * as lib from "dflockd-client";`,
      `import { startTestServer } from "dflockd-client/testing";`,
      SCENARIO,
      `const refused = (hostname, port) =>`,
      `  Bun.connect({ hostname, port, socket: { data() {} } }).then(`,
      `    (s) => { s.end(); return false; },`,
      `    (e) => { if (e.code === "ECONNREFUSED") return true; throw e; },`,
      `  );`,
      `test("bun", async () => { await scenario({ ...lib, startTestServer }, refused); });`,
    ].join("\n");
    await runner(join(BIN, "bun"), ["test"], "testing.bun.test.mjs", body, /^ 1 pass\n 0 fail$/m);
  });

  it("runs under deno test (npm: specifiers), with Deno's sanitizers on", async () => {
    const body = [
      `import * as lib from "npm:dflockd-client";`,
      `import { startTestServer } from "npm:dflockd-client/testing";`,
      SCENARIO,
      `const refused = (hostname, port) =>`,
      `  Deno.connect({ hostname, port }).then(`,
      `    (c) => { c.close(); return false; },`,
      `    (e) => { if (e instanceof Deno.errors.ConnectionRefused) return true; throw e; },`,
      `  );`,
      `Deno.test("deno", async () => { await scenario({ ...lib, startTestServer }, refused); });`,
    ].join("\n");
    await runner(
      join(BIN, "deno"),
      ["test", "-A", "--quiet", "--node-modules-dir=manual"],
      "testing.deno.test.mjs",
      body,
      /ok \| 1 passed \| 0 failed/,
    );
  });
});
