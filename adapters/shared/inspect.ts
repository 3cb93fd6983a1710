/**
 * `console.log(lock)` and `util.inspect(lock)` on Node and Bun (and through
 * `node:util` on Deno): the lock's {@link DistributedPrimitive.toJSON}
 * summary under its class name, never the secret.
 *
 * @module
 */
import { DistributedPrimitive } from "../../src/primitive.ts";

/** The signature of an inspect hook: the runtime's own formatter and its options. */
type Format = (value: unknown, options: unknown) => string;

/** `DistributedLock { key: …, state: …, server: … }` in the runtime's own formatting. */
export function showLock(lock: DistributedPrimitive, format: Format, options: unknown): string {
  return `${lock.constructor.name} ${format(lock.toJSON(), options)}`;
}

/** Install the hook Node's `util.inspect` (and Bun's console) calls. Idempotent. */
export function installNodeInspect(): void {
  Object.defineProperty(DistributedPrimitive.prototype, Symbol.for("nodejs.util.inspect.custom"), {
    value(this: DistributedPrimitive, _depth: number, options: unknown, inspect: Format): string {
      return showLock(this, inspect, options);
    },
    configurable: true,
    writable: true,
  });
}
