/**
 * Packaging smoke test: pack the npm tarball, install it into an empty
 * project, and take and release a lock from Node ESM, Node CommonJS, Bun and
 * Deno (`npm:` specifier), plus the JSR layout from Deno by path, each in a
 * child process of its own runtime. The server is the run's dflockd (a real
 * one when found, else the double; see test/harness).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
