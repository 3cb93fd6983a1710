import { defineConfig, type Options } from "tsup";

/** The library's entry points: npm subpaths `.`/`./node`, `./bun`, `./deno`, `./testing`. */
const LIBRARY = {
  node: "adapters/node/index.ts",
  bun: "adapters/bun/index.ts",
  deno: "adapters/deno/index.ts",
  testing: "testing.ts",
};

/**
 * Every build: `node:` specifiers kept as written (external), so that Bun and
 * Deno resolve them as builtins; `bun` external (only Bun's adapter loads it).
 */
const common: Options = {
  target: "es2022",
  platform: "neutral",
  external: ["bun", /^node:/],
  removeNodeProtocol: false,
  splitting: true,
  sourcemap: true,
};

export default defineConfig([
  {
    // ESM: one module graph for every entry point, the command line's
    // (package.json "bin", dist/cli.js, its `#!` line from cli.ts) included.
    ...common,
    entry: { ...LIBRARY, cli: "cli.ts" },
    format: ["esm"],
  },
  {
    // CommonJS: one module graph for every library entry point. esbuild
    // splits it as ESM, and `treeshake` has rollup turn each chunk into
    // CommonJS (with "safest", it removes nothing esbuild kept). Without it,
    // tsup converts chunks with sucrase, which also rewrites every `?.` and
    // `??` into calls of a helper.
    ...common,
    entry: LIBRARY,
    format: ["cjs"],
    treeshake: "safest",
    // The one copy of the declarations: scripts/finish-dist.mjs makes each
    // `<entry>.d.ts` re-export its `<entry>.d.cts`.
    dts: { entry: LIBRARY },
  },
]);
