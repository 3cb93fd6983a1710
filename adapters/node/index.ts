/**
 * dflockd-client for Node.js: the full API over `node:net`, and
 * {@link nodeRuntime}. Loading it makes `nodeRuntime` the process's default
 * runtime unless another entry point was loaded first (the first one
 * stays); a client can always be given a runtime of its own with the
 * `runtime` option.
 *
 * @example
 * ```ts
 * import { DistributedLock } from "dflockd-client";
 *
 * const lock = new DistributedLock({ key: "my-resource" });
 * await lock.withLock(async () => {
 *   // critical section
 * });
 * ```
 *
 * @module
 */
import { installRuntime, type Runtime } from "../../src/transport.ts";
import { installNodeInspect } from "../shared/inspect.ts";
import { nodeRuntime as runtime } from "./transport.ts";

installRuntime(runtime);
installNodeInspect();

/**
 * The Node.js runtime: `node:net` and `node:tls` sockets. The default when
 * this entry point is the first loaded; give it to a client explicitly with
 * the `runtime` option.
 *
 * @example
 * ```ts
 * import { DflockdClient } from "dflockd-client";
 * import { nodeRuntime } from "dflockd-client/node";
 *
 * const client = new DflockdClient({ runtime: nodeRuntime });
 * ```
 */
export const nodeRuntime: Runtime = runtime as Runtime;

export * from "../../src/index.ts";
