/**
 * dflockd-client for Deno: the full API over Deno's native TCP
 * (`Deno.connect`), and {@link denoRuntime}. Loading it makes `denoRuntime`
 * the process's default runtime unless another entry point was loaded first
 * (the first one stays); a client can always be given a runtime of its own
 * with the `runtime` option.
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
import { installRuntime, type Runtime } from "../../src/transport.ts";
import { installDenoInspect } from "./inspect.ts";
import { denoRuntime as runtime } from "./transport.ts";

installRuntime(runtime);
installDenoInspect();

/**
 * The Deno runtime: Deno's native connections (`Deno.connect`,
 * `Deno.connectTls`). Works under Deno only. The default when this entry
 * point is the first loaded; give it to a client explicitly with the
 * `runtime` option.
 *
 * @example
 * ```ts
 * import { DflockdClient } from "@dflockd/client";
 * import { denoRuntime } from "@dflockd/client/deno";
 *
 * const client = new DflockdClient({ runtime: denoRuntime });
 * ```
 */
export const denoRuntime: Runtime = runtime as Runtime;

export * from "../../src/index.ts";
