/**
 * Brands for the `LockError` family, so that `instanceof` recognises an error
 * made by another copy of the library in the same process: the CommonJS build
 * loaded beside the ESM build, or two bundles that each carry the core.
 *
 * Each branded class's prototype carries `true` under
 * `Symbol.for("dflockd-client:<name>")`, one property per class and none per
 * instance; an instance carries, through its prototype chain, the brand of
 * every class it belongs to. `LockError`'s `Symbol.hasInstance` (inherited by
 * every subclass) checks the prototype chain first, then the brand of the
 * class on the right of `instanceof`. The registry key is shared by every
 * copy, whichever module system or bundle loaded it.
 *
 * @module
 */

/**
 * Where a branded class keeps its brand's key: an own static property, so that
 * a subclass without a brand of its own (a user's) does not inherit its
 * parent's and recognise every instance of the parent.
 */
const BRAND_KEY: unique symbol = Symbol("dflockd-client brand key");

/** A class, as `instanceof` sees it. */
type Class = abstract new (...args: never[]) => object;

/** The `instanceof` every function has: by prototype chain. */
const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

/**
 * Brand `cls` as `name`. The name is written out rather than read from
 * `cls.name`, which a minifier may change; it must be the same in every copy.
 *
 * @param cls A class of the `LockError` family.
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
