/**
 * The machinery behind `DistributedLock` and `DistributedSemaphore`, by
 * composition: the lock's driver (driver.ts, the machine's one driver), its
 * one-at-a-time {@link Operations} (operations.ts), and what concurrent
 * callers of one instance share: turns for withLock() and hold() scopes,
 * release with its hook, and close. The public classes in primitive.ts
 * document the API and delegate here.
 *
 * @module
 */

import { checkSignal, readsArguments } from "./cancel.ts";
import { LockDriver } from "./driver.ts";
import { AcquireTimeoutError, InvalidArgumentError, LockError, LockLostError, quote } from "./errors.ts";
import { HeldLock } from "./held.ts";
import { fire } from "./hooks.ts";
import { NotLeaderError } from "./leader.ts";
import { isHolding, type LeaseState } from "./machine.ts";
import { stopExplaining } from "./mismatch.ts";
import { Operations } from "./operations.ts";
import { type AcquireOptions, checkCallOptions, type EnqueueStatus, type Settings, serverOf } from "./options.ts";
import type { ConnectionPool } from "./pool.ts";
import type { Grant } from "./protocol.ts";
import { Turns } from "./turns.ts";
import { type ScopeWatch, unwatchScope, watchHolding, watchScope } from "./unreleased.ts";

const _now: () => number = () => performance.now();

/** A scoped holding as hold() hands it over: its epoch and the grant, read at once. */
export interface Scope {
  readonly epoch: number;
  readonly signal: AbortSignal;
  readonly token: string;
  readonly leaseTtl: number;
  readonly fence: string | undefined;
  /** What the scopes registry holds while a hold()'s HeldLock is watched (unreleased.ts). */
  watch: ScopeWatch | undefined;
}

/** One instance: its driver, its operations, and turns among its concurrent callers. */
export class LockEngine {
  readonly #d: LockDriver;
  readonly #ops: Operations;
  /** Turns among concurrent withLock() and hold() callers: made by the first of them (acquire() takes no turn). */
  #turns: Turns | undefined;
  /** The open hold() scope, which has the turn until endScope(): named to a caller that times out behind it. */
  #scope: Scope | undefined;

  constructor(settings: Settings, pool: ConnectionPool) {
    this.#d = new LockDriver(settings, pool, this);
    this.#ops = new Operations(this.#d);
  }

  get key(): string {
    return this.#d.key;
  }

  /** Where this instance is in its life, once the clock has been read. */
  get state(): LeaseState {
    return this.#d.state;
  }

  /** `true` while held, once the clock has been read. */
  get held(): boolean {
    return this.#d.held;
  }

  /** Throw unless held (reading the clock first). */
  assertHeld(): void {
    this.#d.assertHeld();
  }

  /** Throw unless holding `epoch` is the current one and still held, as assertHeld() does (for a HeldLock). */
  assertScope(epoch: number, signal: AbortSignal): void {
    const d = this.#d;
    if (d.epoch === epoch) d.assertHeld();
    else if (signal.aborted) throw signal.reason;
    else throw new LockError(`${quote(d.key)} is not held (this holding ended)`, "NOT_HELD");
  }

  get token(): string | undefined {
    return this.#d.grant?.token;
  }

  get fence(): string | undefined {
    return this.#d.grant?.fence;
  }

  get leaseTtl(): number | undefined {
    return this.#d.grant?.lease;
  }

  get server(): string {
    return serverOf(this.#d.s, this.#d.conn);
  }

  get signal(): AbortSignal | undefined {
    return this.#d.signal;
  }

  /** `owner`, the public instance, is watched while it holds (unreleased.ts): kept only until the first renewal. */
  acquire(options: AcquireOptions | undefined, owner: object): Promise<boolean> {
    return this.#ops.acquire(options, owner);
  }

  enqueue(options: AcquireOptions | undefined, owner: object): Promise<EnqueueStatus> {
    return this.#ops.enqueue(options, owner);
  }

  wait(timeoutS: number | undefined, options: AcquireOptions | undefined, owner: object): Promise<boolean> {
    return this.#ops.wait(timeoutS, options, owner);
  }

  /** Acquire, run `fn`, release: */
  async withLock<T>(fn: (signal: AbortSignal) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    if (typeof fn !== "function") throw new InvalidArgumentError("withLock() needs a function");
    const turn = this.#turn("withLock()", options);
    const leftS = typeof turn === "number" ? turn : await turn;
    try {
      if (!(await this.#ops.acquireWithin(options?.signal, leftS))) throw this.#timedOut(options);
      // `fn` gets the holding's signal when it can read it; an arrow function with no parameters cannot
      // (see readsArguments()), so none is made for it (the driver makes it on first use, as `lock.signal` does).
      this.#checkHeld("withLock()");
      let result: T;
      try {
        result = await (readsArguments(fn) ? fn(this.#d.signal as AbortSignal) : (fn as () => T | Promise<T>)());
      } catch (err) {
        try {
          await this.release();
        } catch {
          // The callback's error is the one that matters.
        }
        throw err;
      }
      await this.release();
      return result;
    } finally {
      this.#turns?.pass();
    }
  }

  /**
   * For a scoped holding (`hold()`): take a turn as withLock() does and
   * acquire; the turn is kept until {@link endScope}.
   * @returns The holding: its epoch (for endScope()) and its grant, read at once.
   */
  async beginScope(options?: AcquireOptions): Promise<Scope> {
    const turn = this.#turn("hold()", options);
    const leftS = typeof turn === "number" ? turn : await turn;
    try {
      if (!(await this.#ops.acquireWithin(options?.signal, leftS))) throw this.#timedOut(options);
      const signal = this.#heldSignal("hold()");
      const grant = this.#d.grant as Grant;
      const scope: Scope = {
        epoch: this.#d.epoch,
        signal,
        token: grant.token,
        leaseTtl: grant.lease,
        fence: grant.fence,
        watch: undefined,
      };
      this.#scope = scope;
      return scope;
    } catch (err) {
      this.#turns?.pass();
      throw err;
    }
  }

  /**
   * Acquire for a scope and make its {@link HeldLock}, which is watched
   * while it holds: if it is collected unreleased, the client warns. It is
   * also watched while its scope is open: if it is collected unreleased, the
   * scope ends once its holding has ended ({@link #dropped}).
   */
  async hold(options?: AcquireOptions): Promise<HeldLock> {
    const s = await this.beginScope(options);
    const held = new HeldLock(
      this.#d.key,
      s.token,
      s.fence,
      s.leaseTtl,
      s.signal,
      () => this.endScope(s.epoch),
      () => this.assertScope(s.epoch, s.signal),
      this.server,
      this.#d.s.limit,
    );
    const d = this.#d;
    if (d.epoch === s.epoch && d.handedOver) watchHolding(d, held, "HeldLock");
    s.watch = watchScope(held, () => this.#dropped(s));
    return held;
  }

  /**
   * The HeldLock of scope `s` was collected unreleased: nobody can end the
   * scope, so end it, and pass its turn on, once its holding has ended (by
   * maxHoldS, a loss or close(); until then the lock is still held). Its
   * loss was told when it happened (signal, onLost, hooks.lost).
   */
  #dropped(s: Scope): void {
    const end = (): void => {
      if (this.#scope === s) this.endScope(s.epoch).catch(() => {});
    };
    if (s.signal.aborted) end();
    else s.signal.addEventListener("abort", end, { once: true });
  }

  /** The signal of the holding just acquired; throws if it already ended (lost, or closed meanwhile). */
  #heldSignal(what: string): AbortSignal {
    this.#checkHeld(what);
    return this.#d.signal as AbortSignal;
  }

  /** Throw unless the holding just acquired is still held and handed over (not lost, nor closed meanwhile). */
  #checkHeld(what: string): void {
    const d = this.#d;
    if (!d.handedOver || !d.held) {
      throw (
        d.takeFailure() ?? new LockError(`${quote(d.key)} was released or closed before ${what} could run`, "ABORTED")
      );
    }
  }

  /** End the scoped holding `epoch`: release it if it is still this instance's, then pass the turn. */
  async endScope(epoch: number): Promise<void> {
    const scope = this.#scope;
    if (scope?.epoch === epoch) {
      this.#scope = undefined;
      unwatchScope(scope.watch);
    }
    try {
      // Still held (or releasing): release it. Lost, and nothing started since (a loss ends the
      // epoch once): release() reports the loss. Anything else is a later holding, not this one.
      const d = this.#d;
      const state = d.phase;
      if (d.epoch === epoch || (state === "lost" && d.epoch === epoch + 1)) await this.release();
    } finally {
      this.#turns?.pass();
    }
  }

  /**
   * Take this caller's turn among the instance's concurrent withLock()/hold()
   * callers (first come, first served), checking the call's options first.
   * Time spent waiting for the turn counts against the timeout; the server
   * waits in whole seconds. The caller then acquires, and passes the turn on
   * when done, or when acquiring fails.
   * @returns The seconds left to wait for the lock: at once when the turn is free.
   */
  #turn(what: string, options: AcquireOptions | undefined): number | Promise<number> {
    checkCallOptions(what, options);
    const waitS = options?.timeoutS ?? this.#d.s.acquireTimeoutS;
    const signal = options?.signal;
    checkSignal(signal);
    this.#turns ??= new Turns();
    if (this.#turns.take()) return waitS;
    return this.#waitTurn(this.#turns, signal, waitS);
  }

  async #waitTurn(turns: Turns, signal: AbortSignal | undefined, waitS: number): Promise<number> {
    const key = this.#d.key;
    const startedAt = _now();
    const turn = turns.wait(signal, waitS * 1000, () => new AcquireTimeoutError(key, waitS, this.#unreleased()));
    this.#ops.waitingHook("turn");
    await turn;
    return Math.max(0, Math.floor(waitS - (_now() - startedAt) / 1000));
  }

  /** What a caller that timed out waiting for its turn is told of the open hold() scope it waited behind. */
  #unreleased(): string | undefined {
    const signal = this.#scope?.signal;
    if (signal === undefined) return undefined;
    const fix = "call release() on its HeldLock (or use await using) to pass the turn on";
    const held = "this instance's previous hold() scope still holds it, not released in that time";
    if (!signal.aborted) return `${held}: ${fix}`;
    const reason = signal.reason;
    const lost = reason instanceof LockLostError ? ` after it lost the lock (${reason.message})` : "";
    return `this instance's previous hold() scope was never released${lost}: ${fix}`;
  }

  #timedOut(options: AcquireOptions | undefined): AcquireTimeoutError {
    return new AcquireTimeoutError(this.#d.key, options?.timeoutS ?? this.#d.s.acquireTimeoutS);
  }

  /** Release, and tell the `released` hook (when set) once released. */
  release(): Promise<void> {
    const d = this.#d;
    const hooks = d.s.hooks;
    // The phase, not `held`: reading the clock here would make the hooks change what release() does.
    if (hooks === undefined || !isHolding(d.phase)) return d.release();
    // Read now: the holding's connection (its server, a leader after a redirect) is gone once it ends.
    const event = this.#ops.lockEvent();
    return d.release().then(
      () => fire("released", hooks.released, () => event),
      (err: unknown) => {
        // Found lost at release (or lost while releasing): told as a loss. A cluster follower's
        // `error_not_leader` left the connection clean and the holding to run out on the leader:
        // nothing was released, nor lost yet, so nothing is told (the call rejects with it). Any
        // other failure closed the connection, which ends the holding on the server: a release.
        if (err instanceof LockLostError) fire("lost", hooks.lost, () => ({ ...event, error: err }));
        else if (!(err instanceof NotLeaderError)) fire("released", hooks.released, () => event);
        throw err;
      },
    );
  }

  /** Drop everything now: */
  close(): void {
    const d = this.#d;
    const hook = d.s.hooks?.released;
    // The phase, not `held`: close() ends the holding, and reading the clock could report it lost (I3).
    if (hook !== undefined && isHolding(d.phase)) {
      // Read before: the holding's connection (its server) is gone once closed.
      const event = this.#ops.lockEvent();
      this.#close();
      fire("released", hook, () => event);
      return;
    }
    this.#close();
  }

  #close(): void {
    const d = this.#d;
    // A LIMIT_MISMATCH being explained (its stats fetched) settles now, without the server's limit.
    stopExplaining(d);
    // Nothing to end and nobody waiting for a turn (a close() after release()): no error is built.
    if (d.phase === "released" && this.#turns?.waiting !== true) {
      d.close();
      return;
    }
    const reason = new LockError(`${quote(d.key)} was closed`, "ABORTED");
    this.#turns?.rejectAll(reason);
    d.close(reason);
  }
}
