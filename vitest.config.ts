import { defineConfig } from "vitest/config";
import { locateDflockd } from "./test/harness/locate.ts";

// The differential test (the double against a real dflockd) joins the
// integration suite whenever a real server is found; without one it cannot
// run, and is left out of the run rather than skipped. Looking costs about a
// second (a `go install` attempt), so only runs that include the integration
// suite look.
const projectArgs = process.argv.filter((a, i, all) => all[i - 1] === "--project" || a.startsWith("--project="));
const wantsIntegration =
  projectArgs.length === 0 ||
  projectArgs.some((a) => /integration|differential|faults|cli/.test(a.replace("--project=", "")));
const real = wantsIntegration ? locateDflockd({ install: true }) : undefined;
if (real !== undefined) {
  process.stderr.write(
    real.bin !== undefined
      ? `== real dflockd for the differential test: ${real.bin} (found via ${real.how})\n`
      : `== no real dflockd, so no differential test in this run: ${real.why}\n`,
  );
}
const differential = ["test/differential/**/*.test.ts"];

// Timeouts catch hangs, not slowness: a busy 2-core machine runs CPU-bound
// tests (the property tests) five times slower than an idle one, so no
// timeout here is within a factor of ten of a test's idle running time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "transport",
          include: ["test/transport/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "smoke",
          include: ["test/smoke/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          // Against the official Python client, installed from PyPI into .cache/python-venv.
          name: "interop",
          include: ["test/interop/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", ...(real?.bin !== undefined ? differential : [])],
          globalSetup: ["test/harness/global-setup.ts"],
          // Each file starts its own servers; files run in parallel on separate ports.
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          // The command line, run as a child process of the runtime under test.
          name: "cli",
          include: ["test/cli/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          testTimeout: 90_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          // A proxy of our own injects delays, cut-offs and server kills; fails on any double holding.
          name: "faults",
          include: ["test/faults/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          testTimeout: 90_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "differential",
          include: differential,
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
