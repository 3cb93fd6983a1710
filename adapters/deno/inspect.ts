/**
 * `console.log(lock)` and `Deno.inspect(lock)` on Deno: as on Node (whose
 * hook is installed too, for `node:util`).
 *
 * @module
 */
import { DistributedPrimitive } from "../../src/primitive.ts";
import { installNodeInspect, showLock } from "../shared/inspect.ts";

/** Install Deno's inspect hook and Node's. Idempotent. */
export function installDenoInspect(): void {
  installNodeInspect();
  Object.defineProperty(DistributedPrimitive.prototype, Symbol.for("Deno.customInspect"), {
    value(this: DistributedPrimitive, inspect: (value: unknown, options: unknown) => string, options: unknown): string {
      return showLock(this, inspect, options);
    },
    configurable: true,
    writable: true,
  });
}
