#!/usr/bin/env node
/**
 * The `dflockd-client` command line: run a command while holding a dflockd
 * lock or semaphore slot, or print every server's stats. Uses the runtime it
 * runs on: Deno's `Deno.connect` and `Deno.Command`, Bun's `Bun.connect` and
 * `Bun.spawn`, or Node's `node:net` and `node:child_process`.
 *
 * @example
 * ```sh
 * deno run --allow-net --allow-run --allow-env --allow-read jsr:@dflockd/client/cli \
 *   lock nightly-backup --timeout 0 -- ./backup.sh
 * ```
 *
 * @module
 */
import type { CliHost } from "./src/cli/host.ts";
import { main } from "./src/cli/main.ts";

const g = globalThis as { Deno?: unknown; Bun?: unknown };
let host: CliHost;
if (g.Deno !== undefined) {
  await import("./adapters/deno/index.ts");
  host = (await import("./adapters/deno/cli.ts")).denoCliHost();
} else if (g.Bun !== undefined) {
  await import("./adapters/bun/index.ts");
  host = (await import("./adapters/bun/cli.ts")).bunCliHost();
} else {
  await import("./adapters/node/index.ts");
  host = (await import("./adapters/node/cli.ts")).nodeCliHost();
}
await main(host);
