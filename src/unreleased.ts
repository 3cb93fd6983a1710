/**
 * A lock nobody will release. Three guards, for long-running processes:
 *
 * - **`maxHoldS`**: the loss a holding's time limit causes, as the `maxHold`
 *   event of its machine (machine.ts) carries it. `Renewals` (renewals.ts)
 *   sets the limit on the holding's one alarm, beside the renewal and the
 *   loss deadline, and fires the event.
 * - **The abandoned-holding warning**: a `FinalizationRegistry` told of the
 *   object the user keeps for a holding (the `DistributedLock` or
 *   `DistributedSemaphore` of an `acquire()` or `enqueue()`/`wait()`, which
 *   operations.ts is given, the `HeldLock` of a `hold()`, which engine.ts
 *   makes; nothing for `withLock()`, whose holding ends with its function)
 *   when the holding is first renewed, and no longer once the holding ends
 *   (the driver's `#settle`). If that object is garbage-collected while the
 *   holding lasts, the client warns once (`console.warn` and
 *   `hooks.abandoned`); the holding is renewed on until its `maxHoldS`, or
 *   the process exits. For this to be
 *   possible, from then on nothing the client keeps while holding refers to that object:
 *   the registry's held value is a small {@link Watch} record naming the
 *   driver, which refers to the engine, never to the public object.
 * - **Told late, on purpose.** From the hand-over to the first renewal, the
 *   holding's {@link Watch} keeps the object itself (so it cannot be
 *   collected unseen); the first renewal registers it and lets go. Most
 *   holdings end sooner and never meet the registry: registering and
 *   unregistering took about 10 % of the CPU of a short acquire + release on
 *   Node and 5 % on Deno, and each registration left a cell for V8's young
 *   collections to keep (CHANGELOG, "Speed (issue 19)"). An object dropped
 *   at once is still reported, once collected after that renewal; a holding
 *   whose `maxHoldS` ends it before then is reported lost only.
 * - **Held values let go.** V8 keeps a registry cell's held value through
 *   young-generation collections even after `unregister()`, so a held value
 *   that reached the instance (the driver does) kept every short holding's
 *   whole instance alive into the old generation (Node 20; what it cost is in
 *   the CHANGELOG, "Speed (issue 19)"). So both registries hold a record, and
 *   the record drops what it names when its watch ends.
 * - **A dropped hold() scope's turn**: a `hold()` scope keeps its instance's
 *   turn (turns.ts) until its `HeldLock` is released, even after its holding
 *   ended by a loss, so that its `release()` reports the loss and the next
 *   caller does not start while its code may still run. A `HeldLock`
 *   collected unreleased can never be released: a second registry, watching
 *   it for as long as its scope is open, has engine.ts end the scope once its
 *   holding has ended, and the next caller gets the turn.
 *
 * @module
 */
import type { LockDriver } from "./driver.ts";
import { LockError, LockLostError, quote } from "./errors.ts";
import { type AbandonedEvent, fire } from "./hooks.ts";
import { isHolding } from "./machine.ts";
import { serverOf } from "./options.ts";

/** The loss a holding's `maxHoldS` causes: its `cause` has code `"MAX_HOLD"`. */
export function maxHoldLoss(key: string, s: number): LockLostError {
  const cause = new LockError(`${quote(key)} was held for its maxHoldS of ${s} s`, "MAX_HOLD");
  const why = `it was held for its maxHoldS of ${s} s, so the client released it (release it sooner, or raise maxHoldS)`;
  return new LockLostError(key, why, cause);
}

/** What the registry was told of: the instance (an acquire()) or the HeldLock (a hold()). */
export type Watched = "instance" | "HeldLock";

/**
 * The registry's held value for one watched holding: the driver while the
 * holding lasts, nothing once it ends (see "Held values let go" above).
 */
export interface Watch {
  driver: LockDriver | undefined;
  readonly what: Watched;
  /** The object, until the holding's first renewal registers it (never while registered: it would never be collected). */
  target: object | undefined;
}

/** The scopes registry's held value: what ends the scope, until the scope ends by itself. */
export interface ScopeWatch {
  end: (() => void) | undefined;
}

/** Made at the first holding to watch; its held value is a {@link Watch}, also its unregister token. */
let registry: FinalizationRegistry<Watch> | undefined;
/** The open hold() scopes' HeldLocks; the held value (a {@link ScopeWatch}, also the token) ends the scope. */
let scopes: FinalizationRegistry<ScopeWatch> | undefined;

/** Make both registries, the same way every time (the scopes' first). */
function registries(): void {
  scopes ??= new FinalizationRegistry((w) => w.end?.());
  registry ??= new FinalizationRegistry(abandoned);
}

/**
 * Watch the holding `d` just handed over: if `target` (the object the user
 * keeps for it) is collected while it holds, warn. Once per holding; told
 * to the registry only by {@link registerWatch}, at its first renewal.
 */
export function watchHolding(d: LockDriver, target: object, what: Watched): void {
  if (d.watched !== undefined || typeof FinalizationRegistry !== "function") return;
  d.watched = { driver: d, what, target };
}

/** The holding `d` watches is being renewed: tell the registry of its object now, if not yet. */
export function registerWatch(d: LockDriver): void {
  const w = d.watched;
  const target = w?.target;
  if (target === undefined) return;
  (w as Watch).target = undefined;
  registries();
  registry?.register(target, w as Watch, w);
}

/** The holding `d` watched has ended: the registry forgets it (if told), and its record the driver and object. */
export function unwatchHolding(d: LockDriver): void {
  const w = d.watched;
  if (w === undefined) return;
  w.driver = undefined;
  d.watched = undefined;
  if (w.target !== undefined) w.target = undefined;
  else registry?.unregister(w);
}

/**
 * Watch the `HeldLock` of an open hold() scope, which keeps its instance's
 * turn until released: if it is collected first, its scope can never end,
 * so `end` (which must not refer to it) ends it.
 * @returns The record to give {@link unwatchScope} when the scope ends.
 */
export function watchScope(held: object, end: () => void): ScopeWatch | undefined {
  if (typeof FinalizationRegistry !== "function") return undefined;
  registries();
  const w: ScopeWatch = { end };
  scopes?.register(held, w, w);
  return w;
}

/** The scope watched as `w` has ended: the registry forgets it, and `w` what ends the scope. */
export function unwatchScope(w: ScopeWatch | undefined): void {
  if (w === undefined) return;
  w.end = undefined;
  scopes?.unregister(w);
}

/** The object kept for a holding was collected: warn, once, if that holding still holds. */
function abandoned(w: Watch): void {
  const d = w.driver;
  if (d === undefined || !isHolding(d.phase)) return;
  const what = w.what;
  w.driver = undefined;
  d.watched = undefined;
  const s = d.s;
  const object = what === "HeldLock" ? "HeldLock" : s.kind === "lock" ? "DistributedLock" : "DistributedSemaphore";
  const maxHoldS = s.maxHoldS;
  const until = maxHoldS === undefined ? "until the process exits" : `until its maxHoldS of ${maxHoldS} s`;
  console.warn(
    `dflockd-client: the ${object} holding ${quote(d.key)} was garbage-collected without being released; ` +
      `the lock stays held and renewed ${until}. Release it (release(), withLock(), or await using with hold() or holdAll()), ` +
      "or set maxHoldS to bound how long a lock can be held.",
  );
  const hook = s.hooks?.abandoned;
  if (hook !== undefined) {
    fire("abandoned", hook, (): AbandonedEvent => ({ key: d.key, server: serverOf(s, d.conn), object, maxHoldS }));
  }
}
