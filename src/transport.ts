/**
 * The seam between the pure core and a runtime. An adapter (Node, Bun, Deno)
 * implements {@link Runtime}: it opens byte streams and lets the core mark its
 * timers as "do not keep the process alive". It knows nothing of the protocol.
 *
 * @module
 */
import { LockError } from "./errors.ts";

/** Callbacks the core installs on a {@link ByteStream}. */
export interface StreamHandlers {
  /** Bytes arrived. The chunk may be reused by the runtime after the call returns. */
  data(chunk: Uint8Array): void;
  /** The stream ended (peer closed, reset, or failed); `error` says why, if known. Called at most once. */
  end(error?: unknown): void;
}

/**
 * A connected, ordered, reliable byte stream (a TCP or TLS socket).
 *
 * Adapters must deliver every written byte in order, coping with their
 * runtime's backpressure and partial writes, and call `end` exactly once.
 */
export interface ByteStream {
  /** Install the callbacks. Called once, before the first write. */
  start(handlers: StreamHandlers): void;
  /** Queue bytes for sending. The core does not modify `bytes` afterwards. */
  write(bytes: Uint8Array): void;
  /** Tear the stream down at once. Idempotent. `end` is still called once. */
  close(): void;
}

/** Where and how to connect. */
export interface ConnectTarget {
  /** Host name or address. */
  host: string;
  /** TCP port. */
  port: number;
  /** Give up after this many milliseconds. */
  timeoutMs: number;
}

/** What the core needs from a runtime. */
export interface Runtime {
  /** Short name, for messages and tests: `"node"`, `"bun"`, `"deno"`. */
  readonly name: string;
  /**
   * Open a stream. Rejects with a {@link ConnectionError} (cause attached) on
   * refusal, reset or timeout.
   */
  connect(target: ConnectTarget): Promise<ByteStream>;
  /** Stop a timer from keeping the process alive. */
  unrefTimer(handle: ReturnType<typeof setTimeout>): void;
  /**
   * Wrap a socket the user created themselves (e.g. a Node `net.Socket`) so
   * the low-level functions can use it; `undefined` if `value` is not one.
   */
  adopt?(value: unknown): ByteStream | undefined;
}

let installed: Runtime | undefined;

/** Called by an entry point (`dflockd-client/node`, …) to choose its adapter. */
export function installRuntime(runtime: Runtime): void {
  installed = runtime;
}

/** The active runtime adapter. */
export function runtime(): Runtime {
  if (installed === undefined) {
    throw new LockError(
      "no runtime adapter is installed: import from 'dflockd-client' (or '/node', '/bun', '/deno'), not from its internals",
      "INVALID_ARGUMENT",
    );
  }
  return installed;
}

/** `setTimeout` whose timer never keeps the process alive. */
export function backgroundTimer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const t = setTimeout(fn, Math.max(0, Math.min(ms, 2_147_483_647)));
  runtime().unrefTimer(t);
  return t;
}
