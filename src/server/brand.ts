/**
 * Brands for the test server's errors (`ConfigError`,
 * `TestServerStoppedError`), so that `instanceof` recognises one made by
 * another copy of `dflockd-client/testing` in the same process: its CommonJS
 * build beside its ESM build. The same scheme as `src/brand.ts` for the
 * `LockError` family (each branded class's prototype carries `true` under
 * `Symbol.for("dflockd-client:<name>")`; `instanceof` checks the prototype
 * chain, then the brand of the class on its right, if that class has one of
 * its own), written again here rather than imported: the server's bundle
 * shares no module with the main entries' (`test/unit/package.test.ts`), and
 * importing `src/brand.ts` would put it in a chunk both load.
 *
 * @module
 */

/** Where a branded class keeps its brand's key: an own static property, not inherited by a user's subclass. */
const BRAND_KEY: unique symbol = Symbol("dflockd-client testing brand key");

/** A class, as `instanceof` sees it. */
type Class = abstract new (...args: never[]) => object;

/** The `instanceof` every function has: by prototype chain. */
const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

/**
 * Brand `cls` as `name` (written out, not read from `cls.name`, which a
 * minifier may change; the same in every copy).
 *
 * @param cls An error class of the test server.
 * @param name Its public name.
 */
export function brand(cls: Class, name: string): void {
  const key = Symbol.for(`dflockd-client:${name}`);
  Object.defineProperty(cls.prototype, key, { value: true });
  Object.defineProperty(cls, BRAND_KEY, { value: key });
}

/**
 * `value instanceof cls`: by prototype chain, or else by the brand of `cls`,
 * if `cls` has one of its own.
 *
 * @param cls The class on the right of `instanceof`.
 * @param value What is tested.
 * @returns Whether `value` is an instance of `cls`, from any copy.
 */
export function hasInstance(cls: Class, value: unknown): boolean {
  if (ordinaryHasInstance.call(cls, value)) return true;
  if (typeof value !== "object" || value === null || !Object.hasOwn(cls, BRAND_KEY)) return false;
  const key = (cls as unknown as { readonly [BRAND_KEY]: symbol })[BRAND_KEY];
  return (value as Record<symbol, unknown>)[key] === true;
}
