import { defineConfig } from "tsup";

export default defineConfig({
  entry: { node: "adapters/node/index.ts" },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2022",
  platform: "node",
  splitting: false,
});
