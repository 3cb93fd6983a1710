/**
 * The one routine that opens a byte stream, on any runtime: the connect
 * deadline, the caller's abort, the TCP and TLS phases, the wording of every
 * failure, the Deno ALPN probe's one retry, and closing a socket that opens
 * after the attempt was given up. A runtime gives only its primitive calls
 * ({@link Runtime}: start a TCP connect, start TLS, finish the handshake,
 * wrap, close); "nothing may stay open" is kept here, once.
 *
 * @module
 */
import { abortError } from "./cancel.ts";
import { ConnectionError, InvalidArgumentError, LockError } from "./errors.ts";
import {
  type ByteStream,
  backgroundTimer,
  type ConnectTarget,
  connectFailedError,
  connectTimeoutError,
  type DialRequest,
  type DialStep,
  hostPort,
  PLAINTEXT_PROBE_ALPN,
  type Runtime,
  refusedAlpn,
  tlsHandshakeError,
} from "./transport.ts";

/** Thrown by a step whose socket came after the attempt had ended (and was closed). */
const GIVEN_UP = new Error("given up");

/** Offered by a runtime that needs the plaintext probe (see {@link PLAINTEXT_PROBE_ALPN}). */
const PROBE: readonly string[] = [PLAINTEXT_PROBE_ALPN];

/** `"node"` → `"Node"`, for the rejection of TLS material. */
function label(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/**
 * Open a stream to `target` through `rt`'s primitives. Rejects with a
 * {@link ConnectionError} worded the same on every runtime (refused, reset,
 * TLS handshake failed, timed out in the TCP or the TLS phase), with
 * `abortError(signal)` when `target.signal` aborts, or with an
 * {@link InvalidArgumentError} when the runtime rejects the TLS material (a
 * runtime's synchronous throw when TLS is asked for; without TLS, such a
 * throw is a {@link ConnectionError}: "Node refused to connect to …"). On
 * any failure, nothing of the attempt stays open: the step under way is
 * cancelled (if the runtime can), the socket so far is closed, and one that
 * a step gives later is closed when it comes.
 */
export function dial<S>(rt: Runtime<S>, target: ConnectTarget): Promise<ByteStream> {
  const where = hostPort(target.host, target.port);
  const tls = target.tls;
  const outer = target.signal;
  if (outer?.aborted) return Promise.reject(abortError(outer));
  return new Promise<ByteStream>((resolve, reject) => {
    const controller = new AbortController();
    let settled = false;
    /** TCP is connected (the TLS phase, when TLS is asked for). */
    let connected = false;
    /** The socket as far as the attempt got, and the step under way. */
    let current: S | undefined;
    let pending: DialStep<S> | undefined;

    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    };
    const fail = (err: LockError): void => {
      if (settled) return;
      finish();
      controller.abort(err);
      giveUp();
      reject(err);
    };
    /** Stop the step under way and close the socket so far. */
    const giveUp = (): void => {
      const step = pending;
      const sock = current;
      pending = undefined;
      current = undefined;
      step?.cancel?.();
      if (sock !== undefined) rt.close(sock);
    };
    const onAbort = (): void => fail(abortError(outer));
    const timer = backgroundTimer(
      () => fail(connectTimeoutError(where, target.timeoutMs, connected && tls !== undefined ? "tls" : "connect")),
      target.timeoutMs,
    );
    outer?.addEventListener("abort", onAbort, { once: true });

    /**
     * Run one step. Its socket becomes the attempt's in the same callback
     * that checks the attempt is still on, so no microtask can fall between
     * (a give-up there would find nothing to close); one that comes after
     * the attempt ended is closed at once.
     */
    const step = (start: () => DialStep<S>): Promise<S> => {
      const s = start();
      pending = s;
      return s.result.then((sock) => {
        if (settled || pending !== s) {
          rt.close(sock);
          throw GIVEN_UP;
        }
        pending = undefined;
        current = sock;
        return sock;
      });
    };

    const attempt = async (alpn: readonly string[] | undefined): Promise<S> => {
      const request: DialRequest = { host: target.host, port: target.port, tls, alpn, signal: controller.signal };
      let tcp: DialStep<S>;
      try {
        tcp = rt.connect(request);
      } catch (err) {
        if (err instanceof LockError) throw err;
        const message = err instanceof Error ? err.message : String(err);
        // With TLS, what a runtime refuses at once is the TLS material (node:tls and Bun parse it there); without,
        // it is the connect itself, and no option of the caller's is to blame.
        if (tls !== undefined) throw new InvalidArgumentError(`${label(rt.name)} rejected the tls options: ${message}`);
        throw new ConnectionError(`${label(rt.name)} refused to connect to ${where}: ${message}`, { cause: err });
      }
      let sock = await step(() => tcp);
      connected = true;
      if (tls === undefined) return sock;
      if (rt.startTls !== undefined) {
        const start = rt.startTls.bind(rt);
        const tcpSock = sock;
        sock = await step(() => start(tcpSock, request));
      }
      if (rt.handshake !== undefined) {
        const shake = rt.handshake.bind(rt);
        const secure = sock;
        sock = await step(() => shake(secure, request));
      }
      return sock;
    };

    const mapped = (err: unknown): LockError => {
      if (err instanceof LockError) return err;
      return tls !== undefined && connected ? tlsHandshakeError(where, err) : connectFailedError(where, err);
    };

    const run = async (): Promise<void> => {
      const probe = tls !== undefined && rt.probeAlpn === true;
      let sock: S;
      try {
        sock = await attempt(probe ? PROBE : undefined);
      } catch (err) {
        if (settled) return;
        // A TLS server that enforces ALPN refuses a ClientHello whose protocols it has none of: shake
        // hands again, offering none, within the same deadline and abort.
        if (!probe || err instanceof LockError || !refusedAlpn(err)) return fail(mapped(err));
        giveUp();
        connected = false;
        try {
          sock = await attempt(undefined);
        } catch (again) {
          return fail(mapped(again));
        }
      }
      if (settled) return;
      let stream: ByteStream;
      try {
        stream = rt.stream(sock, {
          host: target.host,
          port: target.port,
          tls,
          alpn: undefined,
          signal: controller.signal,
        });
      } catch (err) {
        return fail(mapped(err));
      }
      current = undefined;
      finish();
      resolve(stream);
    };
    void run();
  });
}
