/**
 * The seam between the pure core and a runtime. An adapter (Node, Bun, Deno)
 * implements {@link Runtime}: it opens byte streams and lets the core mark its
 * timers and idle sockets as "do not keep the process alive". It knows nothing
 * of the protocol.
 *
 * @module
 */
import { ConnectionError, LockError } from "./errors.ts";
import type { Latin1Decoder } from "./protocol.ts";

/**
 * Callbacks the core installs on a {@link ByteStream}.
 *
 * @example
 * ```ts
 * import type { StreamHandlers } from "dflockd-client";
 *
 * const handlers: StreamHandlers = { data: (chunk) => console.log(chunk.length), end: () => {} };
 * ```
 */
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
 * A {@link Runtime}'s `stream()` makes one of a ready socket.
 *
 * @example
 * ```ts
 * import type { ByteStream } from "dflockd-client";
 *
 * const discard: ByteStream = { start() {}, write() {}, close() {} };
 * ```
 */
export interface ByteStream {
  /**
   * Install the callbacks. Called once, before the first write. From here on
   * the core owns the stream, and an adapter's own stream stops keeping the
   * process alive by itself (as after `unref`): the core calls `ref` while a
   * request waits for its reply. (A wrapped socket the user created is left
   * as the user made it.)
   */
  start(handlers: StreamHandlers): void;
  /** Queue bytes for sending. The core does not modify `bytes` afterwards. */
  write(bytes: Uint8Array): void;
  /**
   * Queue `text` for sending, as UTF-8. Optional: for runtimes that write a
   * string faster than they would the bytes the core would encode (Node's
   * sockets do); without it, the core encodes and calls {@link write}.
   */
  writeText?(text: string): void;
  /**
   * Decode part of a chunk this stream delivered, one character per byte.
   * Optional: for runtimes with a native way (a Node `Buffer`'s), cheaper
   * than the strict UTF-8 decoder the core otherwise runs on every reply. The
   * core keeps the result only when it is all ASCII.
   */
  readonly latin1?: Latin1Decoder;
  /** Tear the stream down at once. Idempotent. `end` is still called once. */
  close(): void;
  /**
   * Let the socket keep the process (the event loop) alive, as a new one
   * does. The core calls this when a request starts waiting for its reply
   * (a blocked acquire, a renewal, a release). Idempotent; a no-op once the
   * stream is closed. Optional: a stream without `ref`/`unref` keeps the
   * runtime's default.
   */
  ref?(): void;
  /**
   * Stop the socket from keeping the process alive by itself, even with a
   * read pending. The core calls this when no request is waiting any more,
   * so a script that holds a lock and forgets to release it still ends (the
   * OS closes the socket at exit, and the server frees what it held).
   * Idempotent; a no-op once the stream is closed.
   */
  unref?(): void;
}

/**
 * TLS settings after validation, in runtime-neutral terms, as a
 * {@link Runtime}'s primitives receive them (in {@link DialRequest}).
 *
 * @example
 * ```ts
 * import type { TlsSettings } from "dflockd-client";
 *
 * const verifyOnly: TlsSettings = { ca: undefined, cert: undefined, key: undefined, serverName: undefined, verify: true };
 * ```
 */
export interface TlsSettings {
  /** PEM CA certificates to trust, or `undefined` for the runtime's default roots. */
  ca: string[] | undefined;
  /** PEM client certificate, with `key`. */
  cert: string | undefined;
  /** PEM client key, with `cert`. */
  key: string | undefined;
  /** Name to verify the certificate against and send as SNI; default the host. */
  serverName: string | undefined;
  /** `false` only when the user explicitly turned verification off. */
  verify: boolean;
}

/**
 * Where and how {@link dial} (src/dial.ts) connects: what the core asks for,
 * with its own deadline and abort. Adapters never see it.
 */
export interface ConnectTarget {
  /** Host name or address. */
  host: string;
  /** TCP port. */
  port: number;
  /** Give up after this many milliseconds (TCP connect and TLS handshake together). */
  timeoutMs: number;
  /** Speak TLS, with these settings; plain TCP when `undefined`. */
  tls?: TlsSettings | undefined;
  /** Give up at once when this aborts: close whatever is open, reject with `abortError(signal)` (cancel.ts). */
  signal?: AbortSignal | undefined;
}

/**
 * What a runtime's primitive calls are asked to open: one attempt of the
 * core's `dial()`, which owns its deadline, its abort and its errors.
 *
 * @example
 * ```ts
 * import type { DialRequest } from "dflockd-client";
 *
 * const describe = (r: DialRequest): string => `${r.host}:${r.port}${r.tls ? " (TLS)" : ""}`;
 * ```
 */
export interface DialRequest {
  /** Host name or address. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** Speak TLS with these settings; plain TCP when `undefined`. */
  readonly tls: TlsSettings | undefined;
  /** The ALPN protocols to offer in the TLS handshake, if any. */
  readonly alpn: readonly string[] | undefined;
  /**
   * Aborts when the attempt is given up (deadline, the caller's abort, a
   * failure). Only to be handed to a runtime call that takes a signal
   * (`Deno.connect`); the core does the rest.
   */
  readonly signal: AbortSignal;
}

/**
 * One step of a connection attempt under way, as a runtime's primitive
 * starts it: the socket it gives once done, and a way to stop it early if
 * the runtime has one. A step that ends after the attempt was given up has
 * its socket closed by the core.
 *
 * @example
 * ```ts
 * import type { DialStep } from "dflockd-client";
 *
 * const done: DialStep<string> = { result: Promise.resolve("socket") };
 * ```
 */
export interface DialStep<S> {
  /** The runtime's socket once the step is done; rejects with the runtime's own error. */
  readonly result: Promise<S>;
  /** Stop the step now and close what it opened so far (Node destroys a connecting socket). Optional. */
  cancel?(): void;
}

/**
 * A runtime for the client: its primitive socket calls, which the core's
 * one connect routine (`dial()`, src/dial.ts) composes within its deadline
 * and abort, and its timers. `dflockd-client` picks one for the process it
 * runs in; `nodeRuntime`, `bunRuntime` and `denoRuntime` (from
 * `dflockd-client/node`, `/bun`, `/deno`) can be given to a client
 * explicitly through the `runtime` option. The primitives hold no timeout,
 * abort or wording of their own: they start a step and report the runtime's
 * own error.
 *
 * @example
 * ```ts
 * import { DflockdClient, type Runtime } from "dflockd-client";
 * import { nodeRuntime } from "dflockd-client/node";
 *
 * const runtime: Runtime = nodeRuntime;
 * const client = new DflockdClient({ runtime });
 * ```
 */
export interface Runtime<S = unknown> {
  /** Short name, for messages and tests: `"node"`, `"bun"`, `"deno"`. */
  readonly name: string;
  /**
   * Start a TCP connection to `request.host:request.port`: done once TCP is
   * connected. With `request.tls` a runtime may start TLS on it at once
   * (Node, Bun), or connect with TLS in one call (Deno with a client
   * certificate); its handshake is then {@link handshake}'s. A synchronous
   * throw is a rejection of the TLS material (or a {@link LockError} of the
   * adapter's, passed on as it is). The attempt keeps the process alive.
   */
  connect(request: DialRequest): DialStep<S>;
  /** TLS only, optional: start TLS on a connected socket; done with the TLS socket (handshake not yet done). */
  startTls?(socket: S, request: DialRequest): DialStep<S>;
  /** TLS only: done once the TLS handshake on `socket` has completed. */
  handshake?(socket: S, request: DialRequest): DialStep<S>;
  /** The ready socket as a {@link ByteStream}; from here the core owns it. */
  stream(socket: S, request: DialRequest): ByteStream;
  /** Close a socket of any step at once. Idempotent; never throws. */
  close(socket: S): void;
  /**
   * Whether the TLS handshake must offer {@link PLAINTEXT_PROBE_ALPN} so
   * that a plaintext dflockd answers it at once (Deno: its ClientHello is
   * too short otherwise).
   */
  readonly probeAlpn?: boolean;
  /** Stop a timer of this runtime from keeping the process alive. */
  unrefTimer(handle: ReturnType<typeof setTimeout>): void;
  /**
   * Wrap a socket the user created themselves (e.g. a Node `net.Socket`) so
   * the low-level functions can use it; `undefined` if `value` is not one.
   */
  adopt?(value: unknown): ByteStream | undefined;
}

let installed: Runtime | undefined;

/**
 * Called by an entry point (`dflockd-client`, `/node`, `/bun`, `/deno`) to
 * offer its runtime as the process's default. The first one stays: an entry
 * loaded later does not replace it (a client given no `runtime` option keeps
 * using the first). Returns the default in effect.
 */
export function installRuntime(runtime: Runtime): Runtime {
  installed ??= runtime;
  return installed;
}

/** @internal Tests only: make `runtime` the default, replacing the one installed. */
export function replaceRuntime(runtime: Runtime | undefined): void {
  installed = runtime;
}

/** The default runtime: the first installed. */
export function runtime(): Runtime {
  if (installed === undefined) {
    throw new LockError(
      "no runtime adapter is installed: import from 'dflockd-client' (or '/node', '/bun', '/deno'), not from its internals, or give a runtime option",
      "INVALID_ARGUMENT",
    );
  }
  return installed;
}

/** `host:port` as messages name a server (`[::1]:6388` for an IPv6 address). */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * `setTimeout` whose timer never keeps the process alive. Timers belong to
 * the host process's event loop, not to the sockets a client was given, so
 * no client's `runtime` option is asked: a handle with an `unref()` method
 * (Node's, Bun's, Deno 2's) is unref'd by that method, and only a bare
 * numeric handle (older Deno) goes to the default runtime's `unrefTimer`.
 * A runtime loaded first that does not belong to the host (`/deno` on Node)
 * therefore cannot break every timer of every client.
 */
export function backgroundTimer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const t = setTimeout(fn, Math.max(0, Math.min(ms, 2_147_483_647)));
  const unref = (t as { unref?: () => void }).unref;
  if (typeof unref === "function") unref.call(t);
  else installed?.unrefTimer(t);
  return t;
}

/**
 * The ALPN protocol name a TLS client may offer so that a plaintext dflockd
 * answers its ClientHello at once. dflockd reads requests as lines: it
 * answers `error` once three lines have come, or once a line longer than
 * 256 bytes has ended with its `\n` (and then closes). A ClientHello of
 * fewer than 257 bytes, or with no `\n` after its long run, leaves it waiting
 * for more until its read timeout, and the client's handshake with it. This
 * name is 254 bytes without a `\n`, then one: a ClientHello that carries it
 * always makes a line too long, ended. A TLS server that has no ALPN
 * protocols of its own (dflockd's Go server has none) ignores it; one that
 * has (a TLS proxy in front of dflockd) refuses it: see {@link refusedAlpn}.
 */
export const PLAINTEXT_PROBE_ALPN = `dflockd-client ${"-".repeat(239)}\n`;

/** The TLS alert of a server that enforces ALPN and has none of the protocols offered (Deno: rustls's name). */
const NO_APPLICATION_PROTOCOL = /NoApplicationProtocol|no.application.protocol/i;

/**
 * Whether a failed TLS handshake is a server's refusal of the ALPN
 * protocols offered (alert `no_application_protocol`): an adapter that
 * offers {@link PLAINTEXT_PROBE_ALPN} then shakes hands again without it.
 */
export function refusedAlpn(err: unknown): boolean {
  const text = err instanceof Error ? `${err.name} ${err.message}` : String(err);
  return NO_APPLICATION_PROTOCOL.test(text);
}

/** Words the runtimes use for certificate problems (checked first: Deno's say "invalid peer certificate"). */
const CERTIFICATE_TROUBLE =
  /cert|verif|self.signed|issuer|altname|hostname|unknownca|expired|authority|notvalidforname/i;
/** Words the runtimes use when the peer does not speak TLS at all. */
const NOT_TLS =
  /wrong.version|packet.length|unknown.protocol|record|http request|invalidcontenttype|corrupt message|eof|closed|reset/i;

/**
 * The error for a failed TLS handshake, worded the same on every runtime,
 * with a hint at the likely cause. Adapters pass the runtime's error.
 */
export function tlsHandshakeError(where: string, cause: unknown): ConnectionError {
  const text = cause instanceof Error ? `${(cause as { code?: string }).code ?? ""} ${cause.message}` : String(cause);
  let hint = "";
  if (CERTIFICATE_TROUBLE.test(text)) {
    hint = " (certificate verification failed: check tls.ca and tls.serverName)";
  } else if (NOT_TLS.test(text)) {
    hint = " (the server does not seem to speak TLS: is it started with --tls-cert? If not, leave out the tls option)";
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return new ConnectionError(`TLS handshake with ${where} failed: ${message}${hint}`, { cause });
}

/**
 * The error for a connect timeout, worded the same on every runtime. `phase`
 * says whether TCP had connected and the TLS handshake was under way.
 */
export function connectTimeoutError(where: string, timeoutMs: number, phase: "connect" | "tls"): ConnectionError {
  return new ConnectionError(
    phase === "connect"
      ? `connecting to ${where} timed out after ${timeoutMs} ms`
      : `the TLS handshake with ${where} timed out after ${timeoutMs} ms (if the server does not use TLS, leave out the tls option)`,
    { code: "TIMEOUT" },
  );
}

/** The error for a refused, reset or failed connection attempt, worded the same on every runtime. */
export function connectFailedError(where: string, cause: unknown, fallback = "connection failed"): ConnectionError {
  const message = cause instanceof Error ? cause.message : fallback;
  return new ConnectionError(`cannot connect to ${where}: ${message}`, { cause });
}
