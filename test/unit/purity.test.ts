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

/**
 * Blank out string literals, so that names inside strings do not count as uses. A template literal's `${…}`
 * expressions are code, and stay (with their own strings blanked): `${Deno.version.deno}` is a use of Deno.
 */
function withoutStrings(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"' || c === "'") {
      // A quote with no closing one on its line (as in a regular expression's character class) is no string.
      const end = new RegExp(`${c}(?:[^${c}\\\\\\n]|\\\\.)*${c}`, "y");
      end.lastIndex = i;
      if (end.test(text)) {
        out += '""';
        i = end.lastIndex;
        continue;
      }
    } else if (c === "`") {
      out += '""';
      i++;
      while (i < text.length && text[i] !== "`") {
        if (text[i] === "\\") i += 2;
        else if (text.startsWith("${", i)) {
          let depth = 1;
          const start = i + 2;
          i = start;
          while (i < text.length && depth > 0) {
            if (text[i] === "{") depth++;
            else if (text[i] === "}") depth--;
            i++;
          }
          out += ` ${withoutStrings(text.slice(start, i - 1))} `;
        } else i++;
      }
      i++;
      continue;
    }
    out += c;
    i++;
  }
  return out;
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
    // A template literal's text is a string; its ${…} expressions are code.
    expect(violations("const v = `\u0024{Deno.version.deno}`;")).toEqual(["the Deno global"]);
    expect(violations("const v = `Deno \u0024{1 + Number('2')} Bun`;")).toEqual([]);
    expect(violations("const re = /[\"']x/; const b = Bun.file;")).toEqual(["the Bun global"]);
  });
});

const ROOT = join(SRC, "..");

/**
 * The folder (layer) a repository path belongs to, for the import table below. A non-relative specifier is its own
 * layer, `node:` built-ins all one: the package's own name (`dflockd-client/node`) or an npm package is in no row, so
 * it is refused everywhere; it would reach around the table.
 */
function layerOf(path: string): string {
  if (path.startsWith("node:")) return "node:";
  if (path.startsWith("src/cli/")) return "src/cli";
  if (path.startsWith("src/server/")) return "src/server";
  if (path.startsWith("src/")) return "src";
  if (path.startsWith("adapters/")) return path.split("/").slice(0, 2).join("/");
  if (path.startsWith("test/")) return "test";
  return path;
}

const ADAPTER = ["src", "src/cli", "src/server", "adapters/shared", "node:"];
/** Which layer may import which (its own is always allowed). Anything not listed is refused. */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  src: [],
  "src/cli": ["src", "src/server"],
  "src/server": ["src"],
  "adapters/shared": ["src", "src/cli", "node:"],
  "adapters/node": ADAPTER,
  "adapters/bun": ADAPTER,
  "adapters/deno": ADAPTER,
  "mod.ts": ["src", "adapters/node", "adapters/bun", "adapters/deno", "adapters/shared"],
  "testing.ts": ["src", "src/server", "adapters/node", "adapters/bun", "adapters/deno", "adapters/shared"],
  "cli.ts": ["src", "src/cli", "adapters/node", "adapters/bun", "adapters/deno", "adapters/shared"],
};

/** A string literal, or `import(` with what follows it, scanned in order so that `import(` inside a string is skipped. */
const LITERAL_OR_DYNAMIC_IMPORT = /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`|\bimport\s*\(\s*/g;
/** A specifier given to `import(` as a plain literal: quoted, or a template literal without `${`, then `)` or `,`. */
const PLAIN_SPECIFIER = /^(?:"([^"\\\n]*)"|'([^'\\\n]*)'|`([^`\\$]*)`)\s*[),]/;

/**
 * The specifiers of a file's `import(…)`s; an argument that is not a plain string literal (a variable, a
 * concatenation, a template literal with `${…}`) gives `null`: the layer table cannot say where it leads.
 */
function dynamicImportsOf(body: string): Array<string | null> {
  const found: Array<string | null> = [];
  const scan = new RegExp(LITERAL_OR_DYNAMIC_IMPORT.source, "g");
  for (let m = scan.exec(body); m !== null; m = scan.exec(body)) {
    if (!m[0].startsWith("import")) continue;
    const plain = PLAIN_SPECIFIER.exec(body.slice(scan.lastIndex));
    if (plain === null) {
      found.push(null);
      continue;
    }
    found.push((plain[1] ?? plain[2] ?? plain[3]) as string);
    scan.lastIndex += plain[0].length;
  }
  return found;
}

/**
 * The imports of a file (static, re-exports, and `import(…)` with a quoted or template-literal argument): relative
 * ones as repository paths, others as written (`node:net`, `dflockd-client`), and `null` for an `import(…)` whose
 * argument is not a plain string literal.
 */
function importsOf(path: string, source: string): Array<string | null> {
  const body = code(source);
  const found = [
    ...[
      // At a statement's start only, so that "import from 'x'" inside a message is not taken for one.
      ...body.matchAll(/(?:^|;)\s*(?:import|export)\b[^'";]*?\bfrom\s*["']([^"']+)["']/gm),
      ...body.matchAll(/(?:^|;)\s*import\s*["']([^"']+)["']/gm),
    ].map((m) => m[1] as string),
    ...dynamicImportsOf(body),
  ];
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
  return found.map((spec) => {
    if (spec === null || !spec.startsWith(".")) return spec;
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
  return importsOf(path, source).flatMap((target) => {
    if (target === null) return [`${path} imports a computed specifier (an import() of no plain string literal)`];
    const to = layerOf(target);
    return to !== from && !allowed.includes(to) ? [`${path} imports ${target}`] : [];
  });
}

/**
 * What no file under adapters/ may do: the connect deadline, abort and wording are dial()'s (src/dial.ts), and an
 * adapter gives only the runtime's primitives. A file may do some of it only as a named exception, below.
 */
const ADAPTER_FORBIDDEN: Array<[string, RegExp]> = [
  ["a timer (setTimeout)", /\bsetTimeout\b/],
  ["a timer (setInterval)", /\bsetInterval\b/],
  ["clearTimeout", /\bclearTimeout\b/],
  ["clearInterval", /\bclearInterval\b/],
  ["the timers module", /["'](?:node:)?timers(?:\/promises)?["']/],
  ["a sleep (Bun.sleep)", /\bBun\.sleep(?:Sync)?\b/],
  ["an AbortController", /\bAbortController\b/],
  ["the AbortSignal type or its statics", /\bAbortSignal\b/],
  ["a signal's aborted flag", /\.aborted\b/],
  ["an abort listener", /["']abort["']/],
  ["abortError", /\babortError\b/],
  ["a deadline or timeout", /\b(timeoutMs|deadline|timedOut)\b/i],
  ["connect-failure wording", /\b(connectFailedError|connectTimeoutError|tlsHandshakeError|refusedAlpn)\b/],
  ["the plaintext probe (dial() offers it)", /\bPLAINTEXT_PROBE_ALPN\b/],
];

/**
 * The files under adapters/ that may do some of the above, what each may do, and why. None is on a client's connect
 * path; a file not listed may do none of it.
 */
const ADAPTER_EXCEPTIONS: Readonly<Record<string, { readonly may: readonly string[]; readonly why: string }>> = {
  "adapters/bun/listen.ts": {
    may: ["a timer (setTimeout)", "clearTimeout"],
    why: "the server's listener drops a TLS handshake not done within handshakeTimeoutMs (Bun has no such option)",
  },
  "adapters/deno/listen.ts": {
    may: ["a timer (setTimeout)"],
    why: "the server's connections defer work to after this turn of the event loop: a 0 ms timer where Deno has no setImmediate",
  },
  "adapters/deno/tls-relay.ts": {
    may: ["a timer (setTimeout)", "clearTimeout"],
    why: "the server's TLS relay drops a handshake not done within handshakeTimeoutMs, and its accept loop waits 50 ms after a failed accept",
  },
};

/** Which of the rules above a source breaks, comments left out. */
function adapterRuleHits(source: string): string[] {
  const body = code(source);
  return ADAPTER_FORBIDDEN.filter(([, re]) => re.test(body)).map(([what]) => what);
}

/** The rules above that the file at `path` (under adapters/) breaks beyond its exception. */
function adapterViolations(path: string, source: string): string[] {
  const may = ADAPTER_EXCEPTIONS[path]?.may ?? [];
  return adapterRuleHits(source).filter((what) => !may.includes(what));
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
    expect(
      layerViolations("src/pool.ts", 'import { a } from "./a.ts"; import { n } from "../adapters/node/transport.ts";'),
    ).toEqual(["src/pool.ts imports adapters/node/transport.ts"]);
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
    // A dynamic import with a template literal is read like a quoted one; one of no plain literal cannot be placed.
    expect(layerViolations("adapters/bun/index.ts", "const m = await import(`../node/transport.ts`);")).toEqual([
      "adapters/bun/index.ts imports adapters/node/transport.ts",
    ]);
    expect(
      layerViolations(
        "adapters/bun/index.ts",
        'await import(spec);\nawait import("../" + "node/transport.ts");\nawait import(`../$' +
          "{runtime}/transport.ts`);",
      ),
    ).toEqual([
      "adapters/bun/index.ts imports a computed specifier (an import() of no plain string literal)",
      "adapters/bun/index.ts imports a computed specifier (an import() of no plain string literal)",
      "adapters/bun/index.ts imports a computed specifier (an import() of no plain string literal)",
    ]);
    // A non-relative specifier: the package itself (reaching around the table) or an npm package is refused,
    // a node: built-in is an adapter's to use, and "import(" inside a string is no import.
    expect(
      layerViolations(
        "adapters/bun/index.ts",
        'export * from "dflockd-client/node";\nimport x from "left-pad";\nimport * as fs from "node:fs";\nconst m = "use import(x) here";',
      ),
    ).toEqual(["adapters/bun/index.ts imports dflockd-client/node", "adapters/bun/index.ts imports left-pad"]);
    expect(layerViolations("src/open.ts", 'const t = await import("node:tls", { with: {} });')).toEqual([
      "src/open.ts imports node:tls",
    ]);
    expect(layerViolations("bench/run.ts", "")).toEqual([
      "bench/run.ts: its folder bench/run.ts is not in the layer table",
    ]);
  });
});

describe("adapters give primitives only: no timer, abort or connect wording anywhere under adapters/", () => {
  const all = repoFiles().filter((path) => path.startsWith("adapters/"));

  it("has files to check, each adapter's transport.ts among them", () => {
    for (const runtime of ["node", "bun", "deno"]) expect(all).toContain(`adapters/${runtime}/transport.ts`);
    expect(all.some((path) => path.startsWith("adapters/shared/"))).toBe(true);
  });

  for (const path of all) {
    it(`${path}`, () => {
      expect(adapterViolations(path, readFileSync(join(ROOT, path), "utf8"))).toEqual([]);
    });
  }

  it("each exception names a file there, gives a reason, and is still needed for everything it allows", () => {
    for (const [path, { may, why }] of Object.entries(ADAPTER_EXCEPTIONS)) {
      expect(all, path).toContain(path);
      expect(why.length, path).toBeGreaterThan(20);
      const hits = adapterRuleHits(readFileSync(join(ROOT, path), "utf8"));
      for (const what of may) expect(hits, `${path}: ${what}`).toContain(what);
    }
  });

  it("the checker catches each, and ignores comments", () => {
    const old = [
      "const timer = setTimeout(() => fail(connectTimeoutError(where, target.timeoutMs, phase)), target.timeoutMs);",
      "if (target.signal?.aborted) return fail(abortError(target.signal));",
      'target.signal?.addEventListener("abort", onAbort, { once: true });',
      "const controller = new AbortController();",
      "clearTimeout(timer);",
    ].join("\n");
    expect(adapterRuleHits(old)).toEqual([
      "a timer (setTimeout)",
      "clearTimeout",
      "an AbortController",
      "a signal's aborted flag",
      "an abort listener",
      "abortError",
      "a deadline or timeout",
      "connect-failure wording",
    ]);
    expect(adapterRuleHits("const s: AbortSignal = AbortSignal.timeout(5);")).toEqual([
      "the AbortSignal type or its statics",
    ]);
    expect(adapterRuleHits("if (refusedAlpn(err)) offer(PLAINTEXT_PROBE_ALPN);")).toEqual([
      "connect-failure wording",
      "the plaintext probe (dial() offers it)",
    ]);
    expect(adapterRuleHits("const keepAlive = setInterval(() => {}, 1000);\nclearInterval(keepAlive);")).toEqual([
      "a timer (setInterval)",
      "clearInterval",
    ]);
    expect(adapterRuleHits('import { setTimeout as wait } from "node:timers/promises";\nawait Bun.sleep(5);')).toEqual([
      "a timer (setTimeout)",
      "the timers module",
      "a sleep (Bun.sleep)",
    ]);
    expect(adapterRuleHits("// a setTimeout here would be the core's job\nconst ok = 1;")).toEqual([]);
  });

  it("the checker holds every file under adapters/ to it, an exception only to what it names", () => {
    // A connect deadline moved out of transport.ts into a helper of its own.
    const within = [
      "export function within<T>(p: Promise<T>, ms: number, signal?: AbortSignal): Promise<T> {",
      "  const t = setTimeout(() => {}, ms);",
      '  signal?.addEventListener("abort", () => clearTimeout(t));',
      "  return p;",
      "}",
    ].join("\n");
    expect(adapterViolations("adapters/shared/within.ts", within)).toEqual([
      "a timer (setTimeout)",
      "clearTimeout",
      "the AbortSignal type or its statics",
      "an abort listener",
    ]);
    expect(adapterViolations("adapters/node/cli.ts", "setTimeout(() => {}, 5);")).toEqual(["a timer (setTimeout)"]);
    // The listener's handshake limit is allowed there, and nothing else is.
    expect(adapterViolations("adapters/bun/listen.ts", "const t = setTimeout(drop, ms);\nclearTimeout(t);")).toEqual(
      [],
    );
    expect(adapterViolations("adapters/bun/listen.ts", "setInterval(() => {}, 1000);")).toEqual([
      "a timer (setInterval)",
    ]);
    expect(adapterViolations("adapters/deno/listen.ts", "clearTimeout(t);")).toEqual(["clearTimeout"]);
  });
});
