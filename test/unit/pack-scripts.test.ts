/**
 * The package's build and check scripts on small fixtures:
 * scripts/finish-dist.mjs (declarations written once, maps to lines, one
 * sourceMappingURL, class members' doc comments taken out with their lines, a
 * line mapped to its code's source line) and scripts/check-pack.mjs (the 1 MB limit on the
 * unpacked tarball).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, runChild } from "../support/runtime.ts";

let tmp = "";
beforeAll(() => {
  mkdirSync(join(ROOT, ".test-tmp"), { recursive: true });
  tmp = mkdtempSync(join(ROOT, ".test-tmp", "scripts-"));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("scripts/finish-dist.mjs", () => {
  it("makes each entry's ESM declarations re-export its CommonJS ones, and drops declarations nothing uses", async () => {
    const dist = join(tmp, "dist");
    mkdirSync(dist);
    const files: Record<string, string> = {
      "node.js": "export {};\n",
      "node.cjs": "'use strict';\n",
      "node.d.ts": "export declare class LockError extends Error {}\n",
      "node.d.cts": "export declare class LockError extends Error {}\n",
      "types-ABC.d.cts": "export type X = 1;\n",
      "types-ABC.d.ts": "export type X = 1;\n",
      "cli.js": "#!/usr/bin/env node\nexport {};\n//# sourceMappingURL=cli.js.map",
      "cli.js.map": JSON.stringify({
        version: 3,
        sources: ["../cli.ts", "../src/a.ts"],
        sourcesContent: ["x", "y"],
        names: ["n"],
        // Line 1: nothing. Line 2: ../src/a.ts line 4 from column 2, its line 5 from column 6. Line 3: ../cli.ts line 0.
        mappings: ";ECII,IACJ;ADLA",
      }),
      "chunk-X.cjs": "'use strict';\n//# sourceMappingURL=chunk-X.cjs.map\n//# sourceMappingURL=chunk-X.cjs.map",
    };
    for (const [f, body] of Object.entries(files)) writeFileSync(join(dist, f), body);
    const r = await runChild("node", [join(ROOT, "scripts", "finish-dist.mjs"), dist], { cwd: ROOT });
    expect(r.code, r.err).toBe(0);
    const read = (f: string) => readFileSync(join(dist, f), "utf8");
    expect(read("node.d.ts")).toBe('export * from "./node.cjs";\n');
    expect(read("node.d.cts")).toBe(files["node.d.cts"]);
    expect(read("types-ABC.d.cts")).toBe(files["types-ABC.d.cts"]);
    expect(existsSync(join(dist, "types-ABC.d.ts"))).toBe(false);
    expect(read("chunk-X.cjs")).toBe("'use strict';\n//# sourceMappingURL=chunk-X.cjs.map\n");
    expect(read("cli.js")).toBe("#!/usr/bin/env node\nexport {};\n//# sourceMappingURL=cli.js.map\n");
    const map = JSON.parse(read("cli.js.map"));
    expect(map.sourcesContent).toBeUndefined();
    expect(map.names).toEqual([]);
    expect(map.sources).toEqual(["../cli.ts", "../src/a.ts"]);
    // Line 2: column 0 to source 1 line 4 (the first segment's); line 3: column 0 to source 0 line 0.
    expect(map.mappings).toBe(";ACIA;ADJA");
  });
});

describe("scripts/finish-dist.mjs on doc comments", () => {
  it("takes out the doc comments on lines of their own, with their lines and those lines' maps, and nothing else", async () => {
    const dist = join(tmp, "docs-dist");
    mkdirSync(dist);
    const code = [
      "// src/a.ts", // 0
      "var A = class {", // 1
      "  /**", // 2
      "   * A doc comment: taken out.", // 3
      "   */", // 4
      "  x = 1;", // 5
      "  /** One line: taken out. */", // 6
      '  y = "/** not a comment */";', // 7
      "  /* a plain comment: kept */", // 8
      "  z = /** beside code: kept */ 2;", // 9
      "  w = `", // 10
      "  /** inside a template: kept */", // 11
      "  `;", // 12
      "};", // 13
      "var b = /* @__PURE__ */ new Map();", // 14
      "//# sourceMappingURL=a.js.map",
    ].join("\n");
    writeFileSync(join(dist, "a.js"), code);
    // Generated line i maps to source line 10 + i (column 0), for every line 0 to 14.
    const mappings = ["AAUA", ...Array.from({ length: 14 }, () => "AACA")].join(";");
    writeFileSync(
      join(dist, "a.js.map"),
      JSON.stringify({ version: 3, sources: ["../src/a.ts"], names: [], mappings }),
    );
    const r = await runChild("node", [join(ROOT, "scripts", "finish-dist.mjs"), dist], { cwd: ROOT });
    expect(r.code, r.err).toBe(0);
    const lines = readFileSync(join(dist, "a.js"), "utf8").split("\n");
    expect(lines).toEqual([
      "// src/a.ts",
      "var A = class {",
      "  x = 1;",
      '  y = "/** not a comment */";',
      "  /* a plain comment: kept */",
      "  z = /** beside code: kept */ 2;",
      "  w = `",
      "  /** inside a template: kept */",
      "  `;",
      "};",
      "var b = /* @__PURE__ */ new Map();",
      "//# sourceMappingURL=a.js.map",
      "",
    ]);
    // The lines left map to their own source lines: 10, 11, 15 (the old line 5), 17, and on to 24.
    const map = JSON.parse(readFileSync(join(dist, "a.js.map"), "utf8"));
    expect(map.mappings).toBe(["AAUA", "AACA", "AAIA", "AAEA", ...Array.from({ length: 7 }, () => "AACA")].join(";"));
  });
});

describe("scripts/finish-dist.mjs on a line whose first segment carries on the line before", () => {
  // Written in review: a stack frame named `return {`'s line for a call on the next line.
  it("maps the line to the source line of its code, the first segment at or after its indentation", async () => {
    const dist = join(tmp, "indent-dist");
    mkdirSync(dist);
    writeFileSync(join(dist, "a.js"), "var o = {\n    key: f(x)\n};\n//# sourceMappingURL=a.js.map\n");
    // As esbuild writes it: line 1's column 0 carries on source line 0 (column 9); its code (column 4) is source line 1.
    const map = { version: 3, sources: ["../src/a.ts"], names: [], mappings: "AAAA;AAAS,IACL;AACA" };
    writeFileSync(join(dist, "a.js.map"), JSON.stringify(map));
    const r = await runChild("node", [join(ROOT, "scripts", "finish-dist.mjs"), dist], { cwd: ROOT });
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(readFileSync(join(dist, "a.js.map"), "utf8")).mappings).toBe("AAAA;AACA;AACA");
  });
});

describe("scripts/finish-dist.mjs on an else-if line", () => {
  // Written in review: esbuild's CommonJS build maps the `if` of `else if` to where the line before ended
  // (`else if (stream.writeText !== void 0) stream.writeText(bytes);` went to the `if` line above it).
  it("maps the line to its condition's source line, not to the carried-on position at its `if`", async () => {
    const dist = join(tmp, "else-if-dist");
    mkdirSync(dist);
    writeFileSync(join(dist, "a.js"), "if (a) g();\nelse if (b) h();\n//# sourceMappingURL=a.js.map\n");
    // Line 0: column 0 -> 0:0, column 10 -> 0:10. Line 1: column 0 and column 5 (`if`) -> 0:10 again, column 9 -> 1:9.
    const map = { version: 3, sources: ["../src/a.ts"], names: [], mappings: "AAAA,UAAU;AAAA,KAAA,IACD" };
    writeFileSync(join(dist, "a.js.map"), JSON.stringify(map));
    const r = await runChild("node", [join(ROOT, "scripts", "finish-dist.mjs"), dist], { cwd: ROOT });
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(readFileSync(join(dist, "a.js.map"), "utf8")).mappings).toBe("AAAA;AACA");
  });
});

describe("scripts/check-pack.mjs", () => {
  /** Pack a one-file package whose file has `bytes` bytes; the script's status and output. */
  async function check(name: string, bytes: number, readme?: string) {
    const dir = join(tmp, name);
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name, version: "1.0.0", files: ["data.txt"] }));
    if (readme !== undefined) writeFileSync(join(dir, "README.md"), readme);
    writeFileSync(join(dir, "data.txt"), "x".repeat(bytes));
    return runChild("node", [join(ROOT, "scripts", "check-pack.mjs")], { cwd: dir, timeout: 60_000 });
  }

  it("passes a tarball that unpacks to under 1 MB, and says its size", async () => {
    const r = await check("small-pkg", 900_000);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/small-pkg-1\.0\.0\.tgz: \d+ files, [\d.]+ kB packed, 90\d\.\d kB unpacked \(90\d+ bytes\)/);
  });

  it("fails a tarball that unpacks to 1 MB or more, naming its size", async () => {
    const r = await check("big-pkg", 1_000_000);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/big-pkg-1\.0\.0\.tgz: .*100\d\.\d kB unpacked \(100\d+ bytes\): .*must stay under 1 MB/);
  });

  it("holds the README to the size it states, within 5 %", async () => {
    // The README is packed too (about 60 bytes): the tarball unpacks to just over 800 kB.
    const right = await check("stated-pkg", 800_000, "Unpacks to about <!-- size -->805 kB<!-- /size -->.\n");
    expect(right.code, right.err).toBe(0);
    expect(right.out).toMatch(/README\.md states 805 kB/);
    const stale = await check("stale-pkg", 800_000, "Unpacks to about <!-- size -->900 kB<!-- /size -->.\n");
    expect(stale.code).toBe(1);
    expect(stale.err).toMatch(
      /README\.md says the package unpacks to 900 kB, but it unpacks to 80\d\.\d kB: update the figure/,
    );
    const lost = await check("unmarked-pkg", 800_000, "Unpacks to about 1.1 MB.\n");
    expect(lost.code).toBe(1);
    expect(lost.err).toMatch(/README\.md must state the unpacked size .* the marker was not found/);
  });
});
