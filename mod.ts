/**
 * dflockd-client, with the adapter for the runtime it runs on: Deno's native
 * TCP under Deno, Bun's native sockets under Bun, `node:net` elsewhere. The
 * choice is made once, when this module loads, from the `Deno` and `Bun`
 * globals, and becomes the process's default runtime unless an entry point
 * loaded earlier already installed one (the first one stays). Import
 * `./node`, `./bun` or `./deno` to choose yourself, or give a client its
 * runtime with the `runtime` option.
 *
 * @example
 * ```ts
 * import { DistributedLock } from "@dflockd/client";
 *
 * await new DistributedLock({ key: "my-resource" }).withLock(async () => {
 *   // critical section
 * });
 * ```
 *
 * @module
 */
import { bunRuntime } from "./adapters/bun/transport.ts";
import { installDenoInspect } from "./adapters/deno/inspect.ts";
import { denoRuntime } from "./adapters/deno/transport.ts";
import { nodeRuntime } from "./adapters/node/transport.ts";
import { installNodeInspect } from "./adapters/shared/inspect.ts";
import { installRuntime } from "./src/transport.ts";

const g = globalThis as { Deno?: unknown; Bun?: unknown };
installRuntime(g.Deno !== undefined ? denoRuntime : g.Bun !== undefined ? bunRuntime : nodeRuntime);
if (g.Deno !== undefined) installDenoInspect();
else installNodeInspect();

export * from "./src/index.ts";
