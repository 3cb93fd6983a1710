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
