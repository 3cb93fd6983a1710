/**
 * dflockd-client for Node.js: the full API over `node:net`.
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
import { installRuntime } from "../../src/transport.ts";
import { installNodeInspect } from "./inspect.ts";
import { nodeRuntime } from "./transport.ts";

installRuntime(nodeRuntime);
installNodeInspect();

export * from "../../src/index.ts";
