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

const FORBIDDEN: Array<[string, RegExp]> = [
  ["a node: import", /from\s+["']node:/],
  ["a bare Node built-in import", /from\s+["'](net|tls|fs|os|events|buffer|stream|timers|crypto|string_decoder)["']/],
  ["an import from adapters/", /from\s+["'][^"']*adapters\//],
  ["require()", /\brequire\s*\(/],
  ["Buffer", /\bBuffer\b/],
  ["the Bun global", /\bBun\b/],
  ["the Deno global", /\bDeno\b/],
  ["process", /\bprocess\./],
];

describe("the core under src/ is runtime-agnostic", () => {
  const all = files(SRC);

  it("has files to check", () => {
    expect(all.length).toBeGreaterThan(5);
  });

  for (const file of all) {
    it(`${file.slice(SRC.length + 1)} names no runtime`, () => {
      const body = code(readFileSync(file, "utf8"));
      const found = FORBIDDEN.filter(([, re]) => re.test(body)).map(([what]) => what);
      expect(found).toEqual([]);
    });
  }

  it("the checker itself catches a runtime import", () => {
    const body = code('import { Socket } from "node:net";\nconst b = Buffer.from("x");');
    expect(FORBIDDEN.filter(([, re]) => re.test(body)).length).toBe(2);
  });
});
