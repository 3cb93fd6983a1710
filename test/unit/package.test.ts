/** Package metadata that must agree across npm, JSR and Deno. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { VERSION } from "../../src/version.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const read = (f: string) => JSON.parse(readFileSync(join(ROOT, f), "utf8")) as Record<string, unknown>;

describe("package metadata", () => {
  const pkg = read("package.json");
  const jsr = read("jsr.json");
  const deno = read("deno.json");

  it("has one version in package.json, jsr.json and deno.json", () => {
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+(-[\w.]+)?$/);
    expect(jsr.version).toBe(pkg.version);
    expect(deno.version).toBe(pkg.version);
    expect(VERSION).toBe(pkg.version); // what `dflockd-client --version` prints
  });

  it("names the JSR package @dflockd/client in both JSR files, with the same exports", () => {
    expect(jsr.name).toBe("@dflockd/client");
    expect(deno.name).toBe("@dflockd/client");
    expect(deno.exports).toEqual(jsr.exports);
    expect(Object.keys(jsr.exports as object).sort()).toEqual([".", "./bun", "./cli", "./deno", "./node"]);
  });

  it("ships the command line: npm bin dflockd-client, JSR export ./cli, both from cli.ts", () => {
    expect(pkg.bin).toEqual({ "dflockd-client": "./dist/cli.js" });
    expect((jsr.exports as Record<string, string>)["./cli"]).toBe("./cli.ts");
    expect(readFileSync(join(ROOT, "tsup.config.ts"), "utf8")).toMatch(/entry: \{ cli: "cli\.ts" \}/);
  });

  it("lists bun and deno before node/import/require in the npm export conditions", () => {
    const root = (pkg.exports as Record<string, Record<string, unknown>>)["."] as Record<string, unknown>;
    expect(Object.keys(root)).toEqual(["bun", "deno", "import", "require"]);
    for (const sub of ["./node", "./bun", "./deno"]) expect(pkg.exports).toHaveProperty([sub]);
  });

  it("has no runtime dependencies", () => {
    expect(pkg.dependencies ?? {}).toEqual({});
  });

  it("pins the dflockd version the tests use in one place", () => {
    expect((pkg.config as { dflockdVersion?: string }).dflockdVersion).toMatch(/^v\d+\.\d+\.\d+$/);
  });
});
