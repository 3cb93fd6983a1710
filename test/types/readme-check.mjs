// `npm run typecheck` runs this: every ```ts block of README.md and of the
// pages under docs/ must compile under strict TypeScript with
// exactOptionalPropertyTypes, as a user's code would, and every ```js block
// (CommonJS, `require`) must type-check as a .cjs file with checkJs. Each
// block becomes a module of its own in .test-tmp/readme/, named by its file
// and line (readme-line-0118.ts, docs-cli-line-0042.ts); imports of the
// package point at the source; names a block uses without defining (the
// `lock` of an earlier block, helpers such as `buildReport`) are declared in
// readme-globals.d.ts. Then tsc checks them all at once.
// Test runners' imports are real: `vitest` and `node:test` from
// node_modules, `bun:test` from @types/bun; `Deno.test` is declared in
// readme-globals.d.ts, beside the Deno APIs the adapters use
// (types/deno-subset.d.ts).
//
//   node test/types/readme-check.mjs
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUT = join(ROOT, ".test-tmp", "readme");
// README.md, then every page of docs/ (docs/*.md), each block named by its file and line.
const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
copyFileSync(join(ROOT, "test", "types", "readme-globals.d.ts"), join(OUT, "globals.d.ts"));

const src = (path) => relative(OUT, join(ROOT, path)).replaceAll("\\", "/");
const ENTRY = {
  "dflockd-client": src("src/index.ts"),
  "dflockd-client/node": src("adapters/node/index.ts"),
  "dflockd-client/bun": src("adapters/bun/index.ts"),
  "dflockd-client/deno": src("adapters/deno/index.ts"),
  "@dflockd/client": src("mod.ts"),
  "jsr:@dflockd/client": src("mod.ts"),
  "npm:dflockd-client": src("src/index.ts"),
  "dflockd-client/testing": src("testing.ts"),
  "@dflockd/client/testing": src("testing.ts"),
  "jsr:@dflockd/client/testing": src("testing.ts"),
  "npm:dflockd-client/testing": src("testing.ts"),
};

const blocks = [];
// ```ts blocks are ES modules; ```js blocks are CommonJS (`require`), checked as .cjs with checkJs.
const fence = /^```(ts|js)\n([\s\S]*?)^```$/gm;
for (const doc of DOCS) {
  const text = readFileSync(join(ROOT, doc), "utf8");
  // README.md -> "readme", docs/cli.md -> "docs-cli": the start of each block's file name.
  const stem = doc.replace(/\.md$/, "").replaceAll("/", "-").toLowerCase();
  for (let m = fence.exec(text); m !== null; m = fence.exec(text)) {
    const line = text.slice(0, m.index).split("\n").length;
    blocks.push({ doc, stem, line, lang: m[1], code: m[2] });
  }
}
const files = blocks.map(({ doc, stem, line, lang, code }) => {
  const base = `${stem}-line-${String(line).padStart(4, "0")}`;
  if (lang === "js") {
    const body = code.replace(/require\("([^"]+)"\)/g, (all, spec) =>
      ENTRY[spec] ? `require("${ENTRY[spec]}")` : all,
    );
    const name = `${base}.cjs`;
    writeFileSync(join(OUT, name), `// @ts-check\n// ${doc} line ${line}\n${body}`);
    return name;
  }
  let body = code.replace(/from "([^"]+)"/g, (all, spec) => (ENTRY[spec] ? `from "${ENTRY[spec]}"` : all));
  // A block that imports nothing from the package sees the whole API, as after `import * from`.
  if (!/from "[^"]*src\/index\.ts"|from "[^"]*mod\.ts"|from "[^"]*testing\.ts"|from "[^"]*adapters\//.test(body)) {
    body = `import { DistributedLock, DistributedSemaphore, DflockdClient, stats, connect, acquire, release, LockLostError, AcquireTimeoutError, LockError } from "${ENTRY["dflockd-client"]}";\n${body}`;
  }
  const name = `${base}.ts`;
  writeFileSync(join(OUT, name), `// ${doc} line ${line}\n${body}\nexport {};\n`);
  return name;
});

writeFileSync(
  join(OUT, "tsconfig.json"),
  JSON.stringify(
    {
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2022", "ESNext.Disposable", "DOM"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        types: ["node", "bun"],
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        allowImportingTsExtensions: true,
        allowJs: true,
        checkJs: true,
        noUnusedLocals: false,
        noEmit: true,
        skipLibCheck: true,
      },
      files: ["globals.d.ts", src("types/deno-subset.d.ts"), ...files],
    },
    null,
    2,
  ),
);
const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const r = spawnSync(process.execPath, [tsc, "-p", join(OUT, "tsconfig.json")], { encoding: "utf8" });
if (r.status !== 0) {
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  console.error(
    `Examples of ${DOCS.join(", ")}: ${blocks.length} blocks, some do not compile (see .test-tmp/readme/FILE-line-NNNN.ts)`,
  );
  process.exit(1);
}
console.log(
  `Examples of ${DOCS.join(", ")}: ${blocks.length} blocks (TypeScript and CommonJS) compile under strict + exactOptionalPropertyTypes`,
);
