/**
 * The Deno adapter: moves bytes over Deno's native connections
 * (`Deno.connect`, `Deno.connectTls`), not over Deno's `node:net` or
 * `node:tls` emulation. No protocol here.
 *
 * @module
 */

import { abortError } from "../../src/cancel.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import type { Latin1Decoder } from "../../src/protocol.ts";
import {
  type ByteStream,
  type ConnectTarget,
  connectFailedError,
  connectTimeoutError,
  hostPort,
  PLAINTEXT_PROBE_ALPN,
  type Runtime,
  refusedAlpn,
  type StreamHandlers,
  tlsHandshakeError,
} from "../../src/transport.ts";
import { isNodeStyleSocket, NodeStream } from "../node/stream.ts";

/**
 * Each connection has a read pending at all times, with its own buffer, so
 * the buffer starts small (replies are short lines) and doubles, up to the
 * maximum, whenever a read fills it (a large `stats` reply).
 */
const READ_BUFFER_MIN = 256;
const READ_BUFFER_MAX = 16 * 1024;

/** `Deno.Conn` with `ref`/`unref` (every Deno 2 connection, TCP or TLS, has them). */
type RefConn = Deno.Conn & { ref(): void; unref(): void };

/**
 * A `Deno.Conn` seen through the core's {@link ByteStream} interface. Reads
 * run in a loop into one reused buffer; writes are chained, and each is
 * repeated until the kernel has taken every byte (Deno may write partially).
 * Once started it does not keep the process alive unless the core refs it:
 * `Deno.Conn.unref()` covers the read already pending and later ones, and
 * `ref()` takes the pending read back.
 */
/**
 * Deno's chunks are plain `Uint8Array`s. For a short line, building the
 * string from its bytes directly is cheaper in Deno than a strict UTF-8
 * decode (≈100 ns per reply); a long one (a `stats` reply) is left to the
 * core's decoder, so no call ever gets more arguments than this.
 */
const shortLatin1: Latin1Decoder = (bytes, start, end) => {
  if (end - start > 128) return undefined;
  const part = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
  return String.fromCharCode.apply(null, part as unknown as number[]);
};

class DenoStream implements ByteStream {
  readonly #conn: Deno.Conn;
  readonly latin1: Latin1Decoder = shortLatin1;
  #handlers: StreamHandlers | undefined;
  /** The bytes `conn.write` is writing now, and what waits behind them. */
  #current: Uint8Array | undefined;
  #backlog: Uint8Array[] = [];
  #closed = false;
  #ended = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  start(h: StreamHandlers): void {
    this.#handlers = h;
    this.unref();
    void this.#readLoop();
  }

  ref(): void {
    if (this.#closed) return;
    try {
      (this.#conn as RefConn).ref();
    } catch {
      // Closed by the peer; the read loop reports it.
    }
  }

  unref(): void {
    if (this.#closed) return;
    try {
      (this.#conn as RefConn).unref();
    } catch {
      // Closed by the peer; the read loop reports it.
    }
  }

  async #readLoop(): Promise<void> {
    let buf = new Uint8Array(READ_BUFFER_MIN);
    let error: unknown;
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        if (this.#closed) return;
        this.#handlers?.data(buf.subarray(0, n));
        if (n === buf.length && buf.length < READ_BUFFER_MAX) buf = new Uint8Array(buf.length * 2);
      }
    } catch (err) {
      error = err;
    }
    this.#end(this.#closed ? undefined : error);
  }

  #end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.close();
    this.#handlers?.end(error);
  }

  /**
   * One `conn.write` at a time, in order; a partial write continues with
   * the rest. The continuations are bound once, so a write costs the
   * runtime's promise and one `then`, not a chain of closures.
   */
  write(bytes: Uint8Array): void {
    if (this.#closed) return;
    if (this.#current !== undefined) {
      this.#backlog.push(bytes);
      return;
    }
    this.#current = bytes;
    this.#conn.write(bytes).then(this.#wrote, this.#writeFailed);
  }

  readonly #wrote = (n: number): void => {
    if (this.#closed) return;
    const current = this.#current as Uint8Array;
    const next = n < current.length ? current.subarray(n) : this.#backlog.shift();
    this.#current = next;
    if (next !== undefined) this.#conn.write(next).then(this.#wrote, this.#writeFailed);
  };

  readonly #writeFailed = (err: unknown): void => this.#end(err);

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#backlog = [];
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer.
    }
    // A pending read resolves or rejects after close(); report the end now.
    queueMicrotask(() => this.#end());
  }
}

/**
 * Offered in every handshake: Deno's ClientHello is shorter than dflockd's
 * longest line, so a plaintext dflockd would wait for more of it instead of
 * answering, and the handshake would wait out the connect timeout. With it
 * the server answers `error` at once, and the handshake fails at once, with
 * the core's hint that the server does not speak TLS. A TLS server that
 * enforces ALPN (one with protocols of its own) refuses it: the handshake is
 * then tried once more, offering no protocol.
 */
const ALPN = [PLAINTEXT_PROBE_ALPN];

async function connectDeno(target: ConnectTarget): Promise<ByteStream> {
  const where = hostPort(target.host, target.port);
  const t = target.tls;
  if (t !== undefined && !t.verify) {
    throw new InvalidArgumentError("tls.insecureSkipVerify is not supported on Deno");
  }
  if (t?.serverName !== undefined && t.serverName !== target.host) {
    throw new InvalidArgumentError(
      `Deno verifies the server's certificate against the host it connects to; connect to "${t.serverName}" instead of setting tls.serverName`,
    );
  }
  const controller = new AbortController();
  let timedOut = false;
  let connected = false;
  let conn: Deno.Conn | undefined;
  let expire: (reason: unknown) => void = () => {};
  const expired = new Promise<never>((_, reject) => {
    expire = reject;
  });
  expired.catch(() => {});
  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
    timedOut = true;
    controller.abort();
    closeQuietly(conn);
    expire(abortError(target.signal));
  };
  if (target.signal?.aborted) throw abortError(target.signal);
  target.signal?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
    // A TLS handshake takes no signal: closing the connection ends it as far
    // as JavaScript can see. Deno itself (its rustls-tokio-stream) still keeps
    // the socket until the handshake ends, when the server answers or hangs
    // up (a dflockd should, once its --read-timeout passes); no Deno API can
    // cut it short. It does not keep the process alive.
    closeQuietly(conn);
    expire(new Error("timed out"));
  }, target.timeoutMs);
  Deno.unrefTimer(timer as unknown as number);
  /** Await `step` unless the timer fires first; a connection that arrives late is closed. */
  const step = <T>(p: Promise<T>, late: (value: T) => void): Promise<T> => {
    p.then(
      (v) => timedOut && late(v),
      () => {},
    );
    return Promise.race([p, expired]);
  };
  /** Connect (and shake hands) offering `alpn`; `conn` is the connection as far as it got. */
  const open = async (alpn: string[] | undefined): Promise<Deno.Conn> => {
    const offer = alpn === undefined ? {} : { alpnProtocols: alpn };
    if (t !== undefined && t.cert !== undefined && t.key !== undefined) {
      // A client certificate needs connectTls (startTls cannot send one); it takes no signal.
      const tls = await step(
        Deno.connectTls({
          hostname: target.host,
          port: target.port,
          cert: t.cert,
          key: t.key,
          ...offer,
          ...(t.ca !== undefined && { caCerts: t.ca }),
        }),
        closeQuietly,
      );
      conn = tls;
      connected = true;
      await step(tls.handshake(), () => {});
      return tls;
    }
    const tcp = await step(
      Deno.connect({ hostname: target.host, port: target.port, signal: controller.signal }),
      closeQuietly,
    );
    // Owned from here: whatever fails next, the catch below closes it.
    conn = tcp;
    connected = true;
    tcp.setNoDelay(true);
    if (t !== undefined) {
      const tls = await step(
        Deno.startTls(tcp, {
          hostname: target.host,
          ...offer,
          ...(t.ca !== undefined && { caCerts: t.ca }),
        }),
        closeQuietly,
      );
      conn = tls;
      await step(tls.handshake(), () => {});
      return tls;
    }
    return tcp;
  };
  try {
    let opened: Deno.Conn;
    try {
      opened = await open(t === undefined ? undefined : ALPN);
    } catch (err) {
      // A TLS server that enforces ALPN refuses a ClientHello whose protocols it has none of: shake hands
      // again, offering none, within the same deadline and abort.
      if (t === undefined || timedOut || aborted || !refusedAlpn(err)) throw err;
      closeQuietly(conn);
      conn = undefined;
      connected = false;
      opened = await open(undefined);
    }
    if (timedOut) throw new Error("timed out");
    return new DenoStream(opened);
  } catch (err) {
    closeQuietly(conn);
    if (aborted) throw abortError(target.signal);
    if (timedOut) throw connectTimeoutError(where, target.timeoutMs, connected && t !== undefined ? "tls" : "connect");
    if (t !== undefined && connected) throw tlsHandshakeError(where, err);
    throw connectFailedError(where, err, String(err));
  } finally {
    clearTimeout(timer);
    target.signal?.removeEventListener("abort", onAbort);
  }
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

/** The Deno {@link Runtime}: `Deno.connect` connections and `Deno.unrefTimer`. */
export const denoRuntime: Runtime = {
  name: "deno",
  connect: connectDeno,
  unrefTimer(handle) {
    Deno.unrefTimer(handle as unknown as number);
  },
  // A net.Socket the user created (through this runtime's node:net) for a low-level call.
  adopt(value) {
    return isNodeStyleSocket(value) ? new NodeStream(value) : undefined;
  },
};
