/**
 * dflockd-client for Bun: the full API over Bun's native sockets (`Bun.connect`).
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
import { installRuntime } from "../../src/transport.ts";
import { installNodeInspect } from "../node/inspect.ts";
import { bunRuntime } from "./transport.ts";

installRuntime(bunRuntime);
installNodeInspect();

export * from "../../src/index.ts";
