import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 5_000,
        },
      },
      {
        test: {
          name: "transport",
          include: ["test/transport/**/*.test.ts"],
          testTimeout: 15_000,
        },
      },
      {
        test: {
          name: "smoke",
          include: ["test/smoke/**/*.test.ts"],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          // Each file starts its own dflockd; files run in parallel on separate ports.
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
