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
import { nodeRuntime } from "./transport.ts";

installRuntime(nodeRuntime);

export * from "../../src/index.ts";
