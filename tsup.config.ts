import { defineConfig } from "tsup";

export default defineConfig([
  {
    // Node: ESM and CommonJS.
    entry: { node: "adapters/node/index.ts" },
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "es2022",
    platform: "node",
  },
  {
    // Bun and Deno: ESM and CommonJS, like Node.
    entry: { bun: "adapters/bun/index.ts", deno: "adapters/deno/index.ts" },
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    target: "es2022",
    platform: "neutral",
    external: ["bun"],
  },
  {
    // dflockd-client/testing: one build for every runtime, which picks its
    // listener when it loads. Its own build, so that none of the server's code
    // lands in a chunk the main entries share. `node:` specifiers are kept as
    // written, so that Deno and Bun resolve them as builtins wherever the file is.
    entry: { testing: "testing.ts" },
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    target: "es2022",
    platform: "neutral",
    external: ["bun", /^node:/],
    removeNodeProtocol: false,
    splitting: false,
  },
  {
    // The command line (package.json "bin"): one file set for every runtime,
    // which picks its adapter when it starts. ESM only; no types to publish.
    entry: { cli: "cli.ts" },
    format: ["esm"],
    target: "es2022",
    platform: "node",
    splitting: false,
    banner: { js: "#!/usr/bin/env node" },
  },
]);
