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
    expect(readFileSync(join(ROOT, "tsup.config.ts"), "utf8")).toMatch(/\bcli: "cli\.ts"/);
  });

  it("lists bun and deno before node/import/require in the npm export conditions", () => {
    const root = (pkg.exports as Record<string, Record<string, unknown>>)["."] as Record<string, unknown>;
    expect(Object.keys(root)).toEqual(["bun", "deno", "import", "require"]);
    for (const sub of ["./node", "./bun", "./deno"]) expect(pkg.exports).toHaveProperty([sub]);
  });

  it("names the repository, its home page and where to report bugs", () => {
    expect(pkg.repository).toEqual({ type: "git", url: "git+https://github.com/mtingers/dflockd-client-ts.git" });
    expect(pkg.homepage).toBe("https://github.com/mtingers/dflockd-client-ts#readme");
    expect(pkg.bugs).toEqual({ url: "https://github.com/mtingers/dflockd-client-ts/issues" });
  });

  it("checks the packed size, and finishes every build with scripts/finish-dist.mjs", () => {
    const scripts = pkg.scripts as Record<string, string>;
    expect(scripts["check:package"]).toMatch(/^npm run build && [^|;]*&& node scripts\/check-pack\.mjs && attw /);
    expect(scripts.build).toMatch(/&& tsup && node scripts\/finish-dist\.mjs$/);
  });

  it("has no runtime dependencies", () => {
    expect(pkg.dependencies ?? {}).toEqual({});
  });

  it("pins the dflockd version the tests use in one place", () => {
    expect((pkg.config as { dflockdVersion?: string }).dflockdVersion).toMatch(/^v\d+\.\d+\.\d+$/);
  });
});

/**
 * The bundles `tsup.config.ts` makes, finished by scripts/finish-dist.mjs,
 * built twice into .test-tmp (JavaScript and source maps only): as
 * configured, and with the `testing` entry taken out. One module graph per
 * format: every source file is in one ESM file and one CommonJS file, which
 * every entry of that format shares. The main entries come out byte for byte
 * the same without the testing entry, and hold none of the server.
 */
describe("the build", () => {
  const MAIN_ESM = ["node.js", "bun.js", "deno.js"];
  const MAIN_CJS = ["node.cjs", "bun.cjs", "deno.cjs"];
  const MAIN = [...MAIN_ESM, ...MAIN_CJS];
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
    const f = await runChild("node", [join(ROOT, "scripts", "finish-dist.mjs"), out], { cwd: ROOT, timeout: 60_000 });
    if (f.code !== 0) throw new Error(`finish-dist failed (${f.code}):\n${f.out}\n${f.err}`);
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
  /** Specifiers a bundle imports (statically, for its side effects only, or dynamically) or requires. */
  const imports = (code: string) =>
    [
      ...code.matchAll(
        /^(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|^import\s*"([^"]+)"|\bimport\s*\(\s*"([^"]+)"\s*\)|\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/gm,
      ),
    ].map((m) => (m[1] ?? m[2] ?? m[3] ?? m[4]) as string);
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
  /** Every output file of a format: `.js` (ESM) or `.cjs`. */
  const outputs = (dir: string, ext: ".js" | ".cjs") => readdirSync(dir).filter((f) => f.endsWith(ext));
  /** For each source file, the output files of `ext` it is bundled in. */
  const owners = (dir: string, ext: ".js" | ".cjs") => {
    const by = new Map<string, string[]>();
    for (const file of outputs(dir, ext)) {
      for (const s of sources(dir, file)) by.set(s, [...(by.get(s) ?? []), file]);
    }
    return by;
  };

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
    expect(
      readdirSync(withTesting)
        .filter((f) => f.startsWith("testing."))
        .sort(),
    ).toEqual(["testing.cjs", "testing.cjs.map", "testing.js", "testing.js.map"]);
    // (The command line is not among them: it shares the server's chunks with the testing entry.)
    for (const entry of MAIN) {
      const files = closure(withTesting, entry);
      expect([...closure(withoutTesting, entry)].sort(), entry).toEqual([...files].sort());
      for (const file of files) {
        expect(readFileSync(join(withTesting, file)).equals(readFileSync(join(withoutTesting, file))), file).toBe(true);
      }
    }
  });

  it("bundles the testing entry apart from the main entries: the server and listeners, no client", () => {
    const main = new Set(MAIN.flatMap((entry) => [...closure(withTesting, entry)]));
    for (const entry of ["testing.js", "testing.cjs"]) {
      const files = [...closure(withTesting, entry)];
      expect(
        files.filter((f) => main.has(f)),
        entry,
      ).toEqual([]); // no file shared with the main entries
      const from = files.flatMap((f) => sources(withTesting, f));
      expect(from).toContain("testing.ts");
      expect(from).toContain("src/server/table.ts");
      // The client's core is the main entry's; the test server does not carry a copy.
      expect(
        from.filter((s) => s.startsWith("src/") && !s.startsWith("src/server/")),
        entry,
      ).toEqual([]);
      const code = files.map((f) => text(withTesting, f)).join("\n");
      expect(code).toContain("LockTable");
      expect(code).toContain("startTestServer");
      // It loads all three listeners on every runtime: an import of "bun" would break it on Node and Deno.
      const specs = files.flatMap((f) => imports(text(withTesting, f)));
      expect(specs.filter((s) => !s.startsWith("./") && !/^node:/.test(s))).toEqual([]);
      expect(specs).toContain("node:net");
    }
    // No other CommonJS entry loads the server: testing.cjs is one file.
    expect(imports(text(withTesting, "testing.cjs")).filter((s) => s.startsWith("./"))).toEqual([]);
  });

  for (const [format, ext, entries] of [
    ["ESM", ".js", [...MAIN_ESM, "testing.js", "cli.js"]],
    ["CommonJS", ".cjs", [...MAIN_CJS, "testing.cjs"]],
  ] as const) {
    it(`makes one ${format} module graph: each source file in one ${ext} file, the core shared by every entry`, () => {
      const by = owners(withTesting, ext);
      const twice = [...by].filter(([, files]) => files.length > 1);
      expect(twice, "source files bundled more than once").toEqual([]);
      for (const core of ["src/errors.ts", "src/pool.ts", "src/driver.ts"]) {
        const [file] = by.get(core) ?? [];
        expect(file, core).toBeDefined();
        for (const entry of entries.filter((e) => !e.startsWith("testing."))) {
          expect(closure(withTesting, entry).has(file as string), `${entry} loads ${core} from ${file}`).toBe(true);
        }
      }
      expect(new Set(entries.flatMap((e) => [...closure(withTesting, e)]))).toEqual(new Set(outputs(withTesting, ext)));
    });
  }

  it("keeps node: specifiers as written, so that Bun and Deno resolve them as builtins", () => {
    for (const file of [...outputs(withTesting, ".js"), ...outputs(withTesting, ".cjs")]) {
      const specs = imports(text(withTesting, file));
      expect(
        specs.filter((s) => !s.startsWith("./") && !/^node:[a-z_/]+$/.test(s) && s !== "bun"),
        file,
      ).toEqual([]);
    }
    expect(imports(text(withTesting, "node.js"))).toContain("node:net");
    expect(imports(text(withTesting, "node.cjs"))).toContain("node:net");
  });

  it("starts the command line with its #! line, and it alone", () => {
    expect(text(withTesting, "cli.js").startsWith("#!/usr/bin/env node\n")).toBe(true);
    const others = outputs(withTesting, ".js").filter((f) => f !== "cli.js" && text(withTesting, f).startsWith("#!"));
    expect(others).toEqual([]);
  });

  it("ships line-level source maps: no sources' text, and a stack trace names src/ files and lines", async () => {
    for (const file of readdirSync(withTesting).filter((f) => f.endsWith(".map"))) {
      const map = JSON.parse(text(withTesting, file)) as { sourcesContent?: unknown; mappings: string };
      expect(map.sourcesContent, file).toBeUndefined();
      // One segment a line at most: no comma in the mappings.
      expect(map.mappings.includes(","), file).toBe(false);
    }
    for (const file of readdirSync(withTesting).filter((f) => /\.c?js$/.test(f))) {
      expect(text(withTesting, file).match(/\/\/# sourceMappingURL=/g), file).toHaveLength(1);
    }
    // The line of src/validate.ts that throws for a key with a space.
    const validate = readFileSync(join(ROOT, "src", "validate.ts"), "utf8").split("\n");
    const at = validate.findIndex(
      (l, i) => /throw new/.test(l) && /the server would refuse it/.test(validate[i + 1] ?? ""),
    );
    expect(at).toBeGreaterThan(0);
    for (const entry of ["node.js", "node.cjs"]) {
      const url = JSON.stringify(`file://${join(withTesting, entry)}`);
      const body = `const m = await import(${url}); try { new m.DistributedLock({ key: "a b" }); } catch (e) { console.log(e.stack); }`;
      const r = await runChild("node", ["--enable-source-maps", "--input-type=module", "-e", body], { cwd: ROOT });
      expect(r.out, entry).toMatch(new RegExp(`\\bsrc/validate\\.ts:${at + 1}:\\d+\\)`));
    }
  });
});
