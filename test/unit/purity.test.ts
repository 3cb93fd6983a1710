import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = join(import.meta.dirname, "..", "..", "src");

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Strip comments so prose about runtimes does not count. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
}

/** Blank out string literals, so that names inside strings do not count as uses. */
function withoutStrings(text: string): string {
  return text.replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '""');
}

/** [what, pattern, checked with string literals blanked out] */
const FORBIDDEN: Array<[string, RegExp, boolean]> = [
  ["a node: import", /from\s+["']node:/, false],
  [
    "a bare Node built-in import",
    /from\s+["'](net|tls|fs|os|events|buffer|stream|timers|crypto|string_decoder)["']/,
    false,
  ],
  ["an import from adapters/", /from\s+["'][^"']*adapters\//, false],
  ["a dynamic import", /\bimport\s*\(/, true],
  ["require()", /\brequire\s*\(/, true],
  ["Buffer", /\bBuffer\b/, true],
  ["the Bun global", /\bBun\b/, true],
  ["the Deno global", /\bDeno\b/, true],
  ["process", /\bprocess\./, true],
];

function violations(source: string): string[] {
  const body = code(source);
  const bare = withoutStrings(body);
  return FORBIDDEN.filter(([, re, blank]) => re.test(blank ? bare : body)).map(([what]) => what);
}

describe("the core under src/ is runtime-agnostic", () => {
  const all = files(SRC);

  it("has files to check", () => {
    expect(all.length).toBeGreaterThan(5);
  });

  for (const file of all) {
    it(`${file.slice(SRC.length + 1)} names no runtime`, () => {
      expect(violations(readFileSync(file, "utf8"))).toEqual([]);
    });
  }

  it("the checker itself catches runtime use, and ignores names inside strings and comments", () => {
    expect(violations('import { Socket } from "node:net";\nconst b = Buffer.from("x");')).toEqual([
      "a node: import",
      "Buffer",
    ]);
    expect(violations("const d = Deno.connect;\nconst p = process.env;")).toEqual(["the Deno global", "process"]);
    expect(violations('const s = Symbol.for("Deno.customInspect"); // Bun and Deno\n')).toEqual([]);
  });
});
