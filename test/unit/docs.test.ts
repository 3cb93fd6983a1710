/**
 * Every public export carries JSDoc with a summary and an @example; every
 * `](#anchor)` link of the docs (README.md, CONTRIBUTING.md, ARCHITECTURE.md
 * and the pages under docs/), also across files (`](docs/cli.md#exit-statuses)`,
 * `](../README.md#keys)`), names a heading that exists, and every link to a
 * Markdown file of the repository names one that exists.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ENTRY = join(import.meta.dirname, "..", "..", "adapters", "node", "index.ts");

function exportsOf(entry: string): Array<{ name: string; doc: string; example: boolean }> {
  const program = ts.createProgram([entry], {
    allowImportingTsExtensions: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (!source) throw new Error("entry not found");
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error("entry has no module symbol");
  return checker.getExportsOfModule(moduleSymbol).map((sym) => {
    const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
    const doc = ts.displayPartsToString(target.getDocumentationComment(checker)).trim();
    const example = target.getJsDocTags(checker).some((t) => t.name === "example");
    return { name: sym.getName(), doc, example };
  });
}

describe("public API documentation", () => {
  const all = exportsOf(ENTRY);

  it("exports the whole contract", () => {
    const names = all.map((e) => e.name);
    for (const n of [
      "DistributedLock",
      "DistributedSemaphore",
      "stats",
      "stableHashShard",
      "ShardingStrategy",
      "AcquireTimeoutError",
      "LockError",
      "acquire",
      "enqueue",
      "waitForLock",
      "renew",
      "release",
      "semAcquire",
      "semEnqueue",
      "semWaitForLock",
      "semRenew",
      "semRelease",
      "connect",
      "HeldLocks",
      "LockSpec",
      "MultiLockOptions",
    ]) {
      expect(names).toContain(n);
    }
  });

  for (const e of all) {
    it(`${e.name} has JSDoc with an example`, () => {
      expect(e.doc.length, `${e.name} has no JSDoc summary`).toBeGreaterThan(10);
      expect(e.example, `${e.name} has no @example`).toBe(true);
    });
  }
});

const ROOT = join(import.meta.dirname, "..", "..");
const PAGES = readdirSync(join(ROOT, "docs"))
  .filter((f) => f.endsWith(".md"))
  .sort()
  .map((f) => `docs/${f}`);
const DOCS = ["README.md", "CONTRIBUTING.md", "ARCHITECTURE.md", ...PAGES];

/**
 * The anchors GitHub makes of a Markdown file's headings (outside code
 * fences): the text without its inline markup, lower-cased, with punctuation
 * dropped and spaces turned into hyphens; a repeated anchor gets `-1`, `-2`...
 */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} +(.*?) *#*$/.exec(line);
    if (m === null) continue;
    const text = (m[1] ?? "").replace(/\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/<[^>]+>/g, "");
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/**
 * Every link of `markdown` (outside code fences and code spans) to a Markdown
 * file of the repository, to an anchor, or to both, as [path or "", anchor or ""]:
 * the path as written (relative to the linking file), "" for the file itself.
 */
function mdLinks(markdown: string): Array<[string, string]> {
  const prose = markdown.replace(/^```[\s\S]*?^```$/gm, "").replace(/`[^`\n]*`/g, "");
  return [...prose.matchAll(/\]\(((?:\.{1,2}\/)?[A-Za-z0-9_./-]*\.md)?(?:#([^)\s]+))?\)/g)]
    .filter((m) => m[1] !== undefined || m[2] !== undefined)
    .map((m) => [m[1] ?? "", m[2] ?? ""]);
}

/** The repository path a link of `from` names: `docs/cli.md` + `../README.md` is `README.md`. */
function resolveLink(from: string, target: string): string {
  return target === "" ? from : posix.normalize(posix.join(posix.dirname(from), target));
}

describe("links between the docs", () => {
  const text = new Map(DOCS.map((f) => [f, readFileSync(join(ROOT, f), "utf8")]));
  const anchors = new Map(DOCS.map((f) => [f, anchorsOf(text.get(f) ?? "")]));

  it("makes GitHub's anchors", () => {
    const a = anchorsOf(
      "# A b\n## Held for a scope: `await using`\n```\n# not a heading\n```\n### A b\n## `stats()`\n",
    );
    expect([...a]).toEqual(["a-b", "held-for-a-scope-await-using", "a-b-1", "stats"]);
  });

  it("resolves links relative to the linking file", () => {
    expect(mdLinks("[a](#x) [b](docs/cli.md#exit-statuses) [c](../README.md) [d](https://x.y/#z) `[e](#f)`")).toEqual([
      ["", "x"],
      ["docs/cli.md", "exit-statuses"],
      ["../README.md", ""],
    ]);
    expect(resolveLink("docs/cli.md", "../README.md")).toBe("README.md");
    expect(resolveLink("README.md", "docs/cli.md")).toBe("docs/cli.md");
    expect(resolveLink("docs/cli.md", "testing.md")).toBe("docs/testing.md");
    expect(resolveLink("docs/cli.md", "")).toBe("docs/cli.md");
  });

  it("finds the pages under docs/", () => {
    expect(PAGES).toEqual(expect.arrayContaining(["docs/cli.md", "docs/testing.md"]));
  });

  for (const file of DOCS) {
    it(`${file}: every link to a Markdown file names one that exists`, () => {
      const missing = mdLinks(text.get(file) ?? "")
        .map(([target]) => resolveLink(file, target))
        .filter((path) => !existsSync(join(ROOT, path)));
      expect(missing).toEqual([]);
    });

    it(`${file}: every anchor link names a heading`, () => {
      const broken = mdLinks(text.get(file) ?? "")
        .filter(([, anchor]) => anchor !== "")
        .filter(([target, anchor]) => {
          const path = resolveLink(file, target);
          const known =
            anchors.get(path) ?? anchorsOf(existsSync(join(ROOT, path)) ? readFileSync(join(ROOT, path), "utf8") : "");
          return !known.has(anchor);
        });
      expect(broken.map(([t, a]) => `${t}#${a}`)).toEqual([]);
    });
  }

  it("README.md links to every page under docs/", () => {
    const linked = new Set(mdLinks(text.get("README.md") ?? "").map(([target]) => resolveLink("README.md", target)));
    for (const page of PAGES) expect([...linked], `README.md links to ${page}`).toContain(page);
  });

  it("the JSR package publishes the pages the README links to (jsr.json and deno.json)", () => {
    // Without a linked repository, jsr.io resolves the README's relative links to the package's own files.
    for (const f of ["jsr.json", "deno.json"]) {
      const include = (JSON.parse(readFileSync(join(ROOT, f), "utf8")) as { publish: { include: string[] } }).publish
        .include;
      expect(include, `${f} publishes docs/`).toContain("docs/**/*.md");
    }
  });

  it("every page under docs/ links back to README.md", () => {
    for (const page of PAGES) {
      const back = mdLinks(text.get(page) ?? "").some(([target]) => resolveLink(page, target) === "README.md");
      expect(back, `${page} links back to README.md`).toBe(true);
    }
  });

  it("README.md has a table of contents that lists every top-level section", () => {
    const readme = text.get("README.md") ?? "";
    const sections = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1] ?? "").filter((h) => h !== "Contents");
    const toc = readme.slice(readme.indexOf("## Contents"), readme.indexOf("\n## ", readme.indexOf("## Contents") + 1));
    for (const s of sections) expect(toc, `the contents list ${s}`).toContain(`[${s}](#`);
  });
});
