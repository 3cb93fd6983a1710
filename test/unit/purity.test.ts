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

const ROOT = join(SRC, "..");

/** The folder (layer) a repository path belongs to, for the import table below. */
function layerOf(path: string): string {
  if (path.startsWith("src/cli/")) return "src/cli";
  if (path.startsWith("src/server/")) return "src/server";
  if (path.startsWith("src/")) return "src";
  if (path.startsWith("adapters/")) return path.split("/").slice(0, 2).join("/");
  if (path.startsWith("test/")) return "test";
  return path;
}

const ADAPTER = ["src", "src/cli", "src/server", "adapters/shared"];
/** Which layer may import which (its own is always allowed). Anything not listed is refused. */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  src: [],
  "src/cli": ["src", "src/server"],
  "src/server": ["src"],
  "adapters/shared": ["src", "src/cli"],
  "adapters/node": ADAPTER,
  "adapters/bun": ADAPTER,
  "adapters/deno": ADAPTER,
  "mod.ts": ["src", "adapters/node", "adapters/bun", "adapters/deno", "adapters/shared"],
  "testing.ts": ["src", "src/server", "adapters/node", "adapters/bun", "adapters/deno", "adapters/shared"],
  "cli.ts": ["src", "src/cli", "adapters/node", "adapters/bun", "adapters/deno", "adapters/shared"],
};

/** The relative imports of a file (static, re-exports, and `import("…")`), as repository paths. */
function importsOf(path: string, source: string): string[] {
  const body = code(source);
  const found = [
    ...body.matchAll(/\b(?:import|export)\b[^'";]*?\bfrom\s*["']([^"']+)["']/g),
    ...body.matchAll(/\bimport\s*["']([^"']+)["']/g),
    ...body.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g),
  ].map((m) => m[1] as string);
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
  return found
    .filter((spec) => spec.startsWith("."))
    .map((spec) => {
      const parts = dir === "" ? [] : dir.split("/");
      for (const p of spec.split("/")) {
        if (p === "..") parts.pop();
        else if (p !== ".") parts.push(p);
      }
      return parts.join("/");
    });
}

/** The imports of `path` that its layer may not make. */
function layerViolations(path: string, source: string): string[] {
  const from = layerOf(path);
  const allowed = MAY_IMPORT[from];
  if (allowed === undefined) return [`${path}: its folder ${from} is not in the layer table`];
  return importsOf(path, source)
    .filter((target) => {
      const to = layerOf(target);
      return to !== from && !allowed.includes(to);
    })
    .map((target) => `${path} imports ${target}`);
}

/** What an adapter's transport.ts may not do: the connect deadline, abort and wording are dial()'s (src/dial.ts). */
const ADAPTER_TRANSPORT_FORBIDDEN: Array<[string, RegExp]> = [
  ["a timer (setTimeout)", /\bsetTimeout\b/],
  ["clearTimeout", /\bclearTimeout\b/],
  ["an AbortController", /\bAbortController\b/],
  ["the AbortSignal type or its statics", /\bAbortSignal\b/],
  ["a signal's aborted flag", /\.aborted\b/],
  ["an abort listener", /["']abort["']/],
  ["abortError", /\babortError\b/],
  ["a deadline or timeout", /\b(timeoutMs|deadline|timedOut)\b/i],
  ["connect-failure wording", /\b(connectFailedError|connectTimeoutError|tlsHandshakeError|refusedAlpn)\b/],
  ["the plaintext probe (dial() offers it)", /\bPLAINTEXT_PROBE_ALPN\b/],
];

function transportViolations(source: string): string[] {
  const body = code(source);
  return ADAPTER_TRANSPORT_FORBIDDEN.filter(([, re]) => re.test(body)).map(([what]) => what);
}

function repoFiles(): string[] {
  const inSrc = files(SRC);
  const inAdapters = files(join(ROOT, "adapters"));
  const entries = ["mod.ts", "testing.ts", "cli.ts"].map((f) => join(ROOT, f));
  return [...inSrc, ...inAdapters, ...entries].map((f) =>
    f
      .slice(ROOT.length + 1)
      .split("\\")
      .join("/"),
  );
}

describe("the layer table: which folder may import which", () => {
  const all = repoFiles();

  it("covers src/, adapters/ and the entry points", () => {
    const layers = new Set(all.map(layerOf));
    for (const l of Object.keys(MAY_IMPORT)) expect(layers, l).toContain(l);
  });

  for (const path of all) {
    it(`${path} imports only what its layer may`, () => {
      expect(layerViolations(path, readFileSync(join(ROOT, path), "utf8"))).toEqual([]);
    });
  }

  it("the checker catches an import across layers, and leaves comments and allowed ones alone", () => {
    // The core reaching out: to an adapter, to the command line, to the tests.
    expect(layerViolations("src/open.ts", 'import { nodeRuntime } from "../adapters/node/transport.ts";')).toEqual([
      "src/open.ts imports adapters/node/transport.ts",
    ]);
    expect(layerViolations("src/pool.ts", 'export { main } from "./cli/main.ts";')).toEqual([
      "src/pool.ts imports src/cli/main.ts",
    ]);
    expect(layerViolations("src/pool.ts", 'const t = await import("../test/support/pool.ts");')).toEqual([
      "src/pool.ts imports test/support/pool.ts",
    ]);
    // One adapter reaching into another's folder.
    expect(layerViolations("adapters/bun/transport.ts", 'import { NodeStream } from "../node/transport.ts";')).toEqual([
      "adapters/bun/transport.ts imports adapters/node/transport.ts",
    ]);
    // Allowed: the core, the shared adapter folder, its own folder; and an import in a comment.
    expect(
      layerViolations(
        "adapters/deno/transport.ts",
        'import { dial } from "../../src/dial.ts";\nimport { NodeStream } from "../shared/node-stream.ts";\nimport { x } from "./inspect.ts";\n// import { y } from "../node/cli.ts";',
      ),
    ).toEqual([]);
    expect(layerViolations("bench/run.ts", "")).toEqual([
      "bench/run.ts: its folder bench/run.ts is not in the layer table",
    ]);
  });
});

describe("adapters give primitives only: no timer, abort or wording in a transport.ts", () => {
  for (const runtime of ["node", "bun", "deno"]) {
    it(`adapters/${runtime}/transport.ts`, () => {
      const source = readFileSync(join(ROOT, "adapters", runtime, "transport.ts"), "utf8");
      expect(transportViolations(source)).toEqual([]);
    });
  }

  it("the checker catches each, and ignores comments", () => {
    const old = [
      "const timer = setTimeout(() => fail(connectTimeoutError(where, target.timeoutMs, phase)), target.timeoutMs);",
      "if (target.signal?.aborted) return fail(abortError(target.signal));",
      'target.signal?.addEventListener("abort", onAbort, { once: true });',
      "const controller = new AbortController();",
      "clearTimeout(timer);",
    ].join("\n");
    expect(transportViolations(old)).toEqual([
      "a timer (setTimeout)",
      "clearTimeout",
      "an AbortController",
      "a signal's aborted flag",
      "an abort listener",
      "abortError",
      "a deadline or timeout",
      "connect-failure wording",
    ]);
    expect(transportViolations("const s: AbortSignal = AbortSignal.timeout(5);")).toEqual([
      "the AbortSignal type or its statics",
    ]);
    expect(transportViolations("if (refusedAlpn(err)) offer(PLAINTEXT_PROBE_ALPN);")).toEqual([
      "connect-failure wording",
      "the plaintext probe (dial() offers it)",
    ]);
    expect(transportViolations("// a setTimeout here would be the core's job\nconst ok = 1;")).toEqual([]);
  });
});
