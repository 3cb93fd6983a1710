/**
 * Package metadata that must agree across npm, JSR and Deno, and the build:
 * the testing entry (the server) stays out of the main entries' bundles.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VERSION } from "../../src/version.ts";
import { runChild } from "../support/runtime.ts";

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
    expect(Object.keys(jsr.exports as object).sort()).toEqual([".", "./bun", "./cli", "./deno", "./node", "./testing"]);
  });

  it("ships the test server: npm ./testing (ESM, CJS, types), JSR ./testing, both from testing.ts", () => {
    expect((pkg.exports as Record<string, unknown>)["./testing"]).toEqual({
      import: { types: "./dist/testing.d.ts", default: "./dist/testing.js" },
      require: { types: "./dist/testing.d.cts", default: "./dist/testing.cjs" },
    });
    expect((jsr.exports as Record<string, string>)["./testing"]).toBe("./testing.ts");
    for (const f of [jsr, deno]) expect((f.publish as { include: string[] }).include).toContain("testing.ts");
    const scripts = pkg.scripts as Record<string, string>;
    expect(scripts.typecheck).toMatch(/deno check [^&]*\btesting\.ts/);
    expect(scripts["check:package"]).toMatch(/deno doc --lint [^&]*\btesting\.ts/);
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

/**
 * The bundles `tsup.config.ts` makes, built twice into .test-tmp (JavaScript
 * and source maps only): as configured, and with the `testing` entry taken
 * out. The main entries must come out byte for byte the same, and hold none
 * of the server.
 */
describe("the build", () => {
  const MAIN = ["node.js", "node.cjs", "bun.js", "bun.cjs", "deno.js", "deno.cjs"];
  let tmp = "";
  let withTesting = "";
  let withoutTesting = "";

  /** Build with the repository's tsup config, changed by `change` (a JS expression over `c`), into `out`. */
  async function build(out: string, change: string): Promise<void> {
    const config = join(tmp, `${out.split("/").pop()}.config.ts`);
    writeFileSync(
      config,
      [
        `import configs from ${JSON.stringify(join(ROOT, "tsup.config.ts"))};`,
        `export default (configs as any[])`,
        `  .map((c) => ({ ...c, outDir: ${JSON.stringify(out)}, dts: false, clean: false, silent: true }))`,
        `  .map((c) => ${change})`,
        `  .filter((c) => Object.keys(c.entry).length > 0);`,
      ].join("\n"),
    );
    const tsup = join(ROOT, "node_modules", "tsup", "dist", "cli-default.js");
    const r = await runChild("node", [tsup, "--config", config], { cwd: ROOT, timeout: 120_000 });
    if (r.code !== 0) throw new Error(`tsup failed (${r.code}):\n${r.out}\n${r.err}`);
  }

  beforeAll(async () => {
    mkdirSync(join(ROOT, ".test-tmp"), { recursive: true });
    tmp = mkdtempSync(join(ROOT, ".test-tmp", "build-"));
    withTesting = join(tmp, "with");
    withoutTesting = join(tmp, "without");
    await Promise.all([
      build(withTesting, "c"),
      build(
        withoutTesting,
        "({ ...c, entry: Object.fromEntries(Object.entries(c.entry).filter(([k]) => k !== 'testing')) })",
      ),
    ]);
  }, 180_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const text = (dir: string, f: string) => readFileSync(join(dir, f), "utf8");
  /** Specifiers a bundle imports or requires. */
  const imports = (code: string) =>
    [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)"([^"]+)"/g)].map((m) => m[1] as string);
  /** `file` and the chunks it imports, transitively. */
  const closure = (dir: string, file: string, seen = new Set<string>()): Set<string> => {
    if (seen.has(file)) return seen;
    seen.add(file);
    for (const spec of imports(text(dir, file))) {
      if (spec.startsWith("./")) closure(dir, spec.slice(2), seen);
    }
    return seen;
  };
  /** The source files a bundle was made from, by its source map, relative to the repository. */
  const sources = (dir: string, file: string) =>
    (JSON.parse(text(dir, `${file}.map`)).sources as string[]).map((s) => join(dir, s).slice(ROOT.length + 1));

  it("keeps every file of the server out of the main entries' bundles", () => {
    for (const entry of MAIN) {
      for (const file of closure(withTesting, entry)) {
        const from = sources(withTesting, file);
        expect(from.length, file).toBeGreaterThan(0);
        expect(
          from.filter((s) => s.startsWith("src/server/") || /(^|\/)(testing|listen)\.ts$/.test(s)),
          `${entry} (${file})`,
        ).toEqual([]);
        // Names only the server has: its lock table, its auth reply, its test controls.
        const code = text(withTesting, file);
        for (const name of ["LockTable", "error_auth\\n", "startTestServer", "TestServerStoppedError"]) {
          expect(code.includes(name), `${name} in ${file}`).toBe(false);
        }
      }
    }
  });

  it("leaves the main entries' bundles byte for byte as they are without the testing entry", () => {
    const built = readdirSync(withTesting).sort();
    const testing = built.filter((f) => f.startsWith("testing."));
    expect(testing.sort()).toEqual(["testing.cjs", "testing.cjs.map", "testing.js", "testing.js.map"]);
    // Every other file, main entries, their chunks and the CLI, is the same file.
    expect(built.filter((f) => !testing.includes(f))).toEqual(readdirSync(withoutTesting).sort());
    for (const entry of MAIN) {
      for (const file of closure(withTesting, entry)) {
        expect(readFileSync(join(withTesting, file)).equals(readFileSync(join(withoutTesting, file))), file).toBe(true);
      }
    }
  });

  it("bundles the testing entry on its own: the server and listeners, no client, only node: builtins external", () => {
    for (const file of ["testing.js", "testing.cjs"]) {
      const code = text(withTesting, file);
      expect(code).toContain("LockTable");
      expect(code).toContain("startTestServer");
      const specs = imports(code);
      expect(
        specs.filter((s) => s.startsWith(".")),
        file,
      ).toEqual([]); // no chunk shared with the main entries
      // It loads all three listeners on every runtime: an import of "bun" would break it on Node and Deno.
      expect(
        specs.filter((s) => !/^node:/.test(s)),
        file,
      ).toEqual([]);
      expect(specs).toContain("node:net");
      const from = sources(withTesting, file);
      expect(from).toContain("testing.ts");
      expect(from).toContain("src/server/table.ts");
      // The client's core is the main entry's; the test server does not carry a copy.
      expect(
        from.filter((s) => s.startsWith("src/") && !s.startsWith("src/server/")),
        file,
      ).toEqual([]);
    }
  });
});
