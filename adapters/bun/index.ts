/**
 * dflockd-client for Bun: the full API over Bun's native sockets
 * (`Bun.connect`), and {@link bunRuntime}. Loading it makes `bunRuntime` the
 * process's default runtime unless another entry point was loaded first
 * (the first one stays); a client can always be given a runtime of its own
 * with the `runtime` option.
 *
 * @example
 * ```ts
 * import { DistributedLock } from "dflockd-client";
 *
 * await new DistributedLock({ key: "my-resource" }).withLock(async () => {
 *   // critical section
 * });
 * ```
 *
 * @module
 */
import { installRuntime, type Runtime } from "../../src/transport.ts";
import { installNodeInspect } from "../shared/inspect.ts";
import { bunRuntime as runtime } from "./transport.ts";

installRuntime(runtime);
installNodeInspect();

/**
 * The Bun runtime: Bun's native sockets (`Bun.connect`, with its `tls`
 * option). Works under Bun only. The default when this entry point is the
 * first loaded; give it to a client explicitly with the `runtime` option.
 *
 * @example
 * ```ts
 * import { DflockdClient } from "dflockd-client";
 * import { bunRuntime } from "dflockd-client/bun";
 *
 * const client = new DflockdClient({ runtime: bunRuntime });
 * ```
 */
export const bunRuntime: Runtime = runtime as Runtime;

export * from "../../src/index.ts";
