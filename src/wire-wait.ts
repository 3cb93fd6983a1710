/**
 * An internal lock option, not part of the public options (like the pool's
 * `POOL`): how an acquire waiting without limit (`timeoutS: Infinity`) is
 * put on the wire, for the command line. The library's one-hour guard on
 * waits stays as it is for every API user; the CLI, which checks its own
 * `--timeout` (up to 24 hours), passes `Infinity` and sets here the whole
 * seconds the server is asked for, so that the server's own timer ends the
 * wait (dflockd before v1.15 does not read a connection blocked in an
 * acquire: closing it does not take the waiter out of the queue). And it is
 * told when each acquire request has gone out, so that a deadline of its own
 * counts the server's time to grant, not the time to connect.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { describeValue, MAX_SECONDS } from "./validate.ts";

/** The option key (a symbol: no public option can name it, and the options' key checks skip it). */
export const WIRE_WAIT: unique symbol = Symbol("dflockd-client wire wait");

/** What {@link WIRE_WAIT} holds. */
export interface WireWait {
  /** The whole seconds (1 to {@link MAX_SECONDS}) sent for a `timeoutS: Infinity` wait, instead of 2^31 - 1. */
  readonly infinityS?: number | undefined;
  /** Called as each acquire request is handed to the connection (after connecting). */
  readonly onSent?: (() => void) | undefined;
}

/**
 * The {@link WIRE_WAIT} option of `options`, checked.
 *
 * @param options A lock's options.
 * @returns The option, or `undefined` when not set.
 * @throws InvalidArgumentError when it is malformed.
 * @example
 * ```ts
 * const wire = wireWaitOf({ key: "k", [WIRE_WAIT]: { infinityS: 5400 } }); // { infinityS: 5400 }
 * ```
 */
export function wireWaitOf(options: object): WireWait | undefined {
  const value = (options as { [WIRE_WAIT]?: unknown })[WIRE_WAIT];
  if (value === undefined) return undefined;
  const w = value as WireWait;
  const s = w.infinityS;
  if (s !== undefined && !(Number.isInteger(s) && s >= 1 && s <= MAX_SECONDS)) {
    throw new InvalidArgumentError(`the wire wait must be whole seconds, 1 to ${MAX_SECONDS}; got ${describeValue(s)}`);
  }
  if (w.onSent !== undefined && typeof w.onSent !== "function") {
    throw new InvalidArgumentError("the wire wait's onSent must be a function");
  }
  return w;
}

/**
 * The seconds to put in an acquire request for a wait of `timeoutS`.
 *
 * @param timeoutS The wait, checked (`Infinity` for no limit).
 * @param wire The instance's {@link WireWait}, if any.
 * @returns `timeoutS`, or the wire's seconds in place of `Infinity`.
 * @example
 * ```ts
 * const s = secondsOnWire(Number.POSITIVE_INFINITY, { infinityS: 5400 }); // 5400
 * ```
 */
export function secondsOnWire(timeoutS: number, wire: WireWait | undefined): number {
  return timeoutS === Number.POSITIVE_INFINITY ? (wire?.infinityS ?? timeoutS) : timeoutS;
}
