/**
 * dflockd-client for Deno: the full API over Deno's native TCP (`Deno.connect`).
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
import { installRuntime } from "../../src/transport.ts";
import { installDenoInspect } from "./inspect.ts";
import { denoRuntime } from "./transport.ts";

installRuntime(denoRuntime);
installDenoInspect();

export * from "../../src/index.ts";
