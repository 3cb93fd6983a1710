/**
 * The Deno adapter: moves bytes over Deno's native connections
 * (`Deno.connect`, `Deno.connectTls`), not over Deno's `node:net` or
 * `node:tls` emulation. No protocol here.
 *
 * @module
 */

import { InvalidArgumentError } from "../../src/errors.ts";
import type { Latin1Decoder } from "../../src/protocol.ts";
import type { ByteStream, DialRequest, DialStep, Runtime, StreamHandlers } from "../../src/transport.ts";
import { isNodeStyleSocket, NodeStream } from "../shared/node-stream.ts";

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
 * repeated until the kernel has taken every byte (Deno may write partially);
 * what is written meanwhile goes out next, joined into one write.
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
    const next = n < current.length ? current.subarray(n) : joined(this.#backlog);
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
 * Empty `queue` into one chunk (`undefined` if it is empty): what queued
 * behind a write goes out in one `conn.write()`, each of which is an op of its
 * own on Deno (a promise, a copy, a task). 64 tries queued on a shared
 * connection in a burst were 64 ops; on Deno in the bench's mass case this
 * was about 0.6 KiB of memory per held lock (7.8–8.1 KiB against 7.1–7.4).
 * No cap, unlike the listener's: a client's backlog is request lines, and a
 * large one (a stalled server) is copied once and written as Deno can take it.
 */
function joined(queue: Uint8Array[]): Uint8Array | undefined {
  if (queue.length <= 1) return queue.pop();
  let size = 0;
  for (const chunk of queue) size += chunk.length;
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of queue) {
    all.set(chunk, at);
    at += chunk.length;
  }
  queue.length = 0;
  return all;
}

/** Connections made by `Deno.connectTls`: TLS from the start, their handshake still to come. */
const connectedTls = new WeakSet<Deno.Conn>();

/**
 * Start a connection: `Deno.connect` (cancelled through the core's signal),
 * or `Deno.connectTls` when a client certificate is to be sent (startTls
 * cannot send one; it takes no signal). Deno's limits on the TLS settings are
 * checked first, synchronously.
 */
function connect(request: DialRequest): DialStep<Deno.Conn> {
  const t = request.tls;
  if (t !== undefined && !t.verify) {
    throw new InvalidArgumentError("tls.insecureSkipVerify is not supported on Deno");
  }
  if (t?.serverName !== undefined && t.serverName !== request.host) {
    throw new InvalidArgumentError(
      `Deno verifies the server's certificate against the host it connects to; connect to "${t.serverName}" instead of setting tls.serverName`,
    );
  }
  if (t !== undefined && t.cert !== undefined && t.key !== undefined) {
    const result = Deno.connectTls({
      hostname: request.host,
      port: request.port,
      cert: t.cert,
      key: t.key,
      ...alpnOffer(request),
      ...(t.ca !== undefined && { caCerts: t.ca }),
    }).then((conn) => {
      connectedTls.add(conn);
      return conn;
    });
    return { result };
  }
  const result = Deno.connect({ hostname: request.host, port: request.port, signal: request.signal }).then((tcp) => {
    tcp.setNoDelay(true);
    return tcp;
  });
  return { result };
}

/** `alpnProtocols` for Deno's TLS calls: what the core offers (its plaintext probe, see `probeAlpn`), if anything. */
function alpnOffer(request: DialRequest): { alpnProtocols?: string[] } {
  return request.alpn === undefined ? {} : { alpnProtocols: [...request.alpn] };
}

/** Start TLS on a TCP connection (a `connectTls` one already is). */
function startTls(conn: Deno.Conn, request: DialRequest): DialStep<Deno.Conn> {
  if (connectedTls.has(conn)) return { result: Promise.resolve(conn) };
  const t = request.tls;
  return {
    result: Deno.startTls(conn as Deno.TcpConn, {
      hostname: request.host,
      ...alpnOffer(request),
      ...(t?.ca !== undefined && { caCerts: t.ca }),
    }),
  };
}

/**
 * Done once the handshake has completed. It takes no signal: closing the
 * connection (the core's `close`) ends it as far as JavaScript can see.
 * Deno itself (its rustls-tokio-stream) still keeps the socket until the
 * handshake ends, when the server answers or hangs up (a dflockd should,
 * once its --read-timeout passes); no Deno API can cut it short. It does not
 * keep the process alive.
 */
function handshake(conn: Deno.Conn): DialStep<Deno.Conn> {
  return { result: (conn as Deno.TlsConn).handshake().then(() => conn) };
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

/** The Deno {@link Runtime}: `Deno.connect` connections and `Deno.unrefTimer`. */
export const denoRuntime: Runtime<Deno.Conn> = {
  name: "deno",
  connect,
  startTls,
  handshake,
  stream: (conn) => new DenoStream(conn),
  close: closeQuietly,
  // Deno's ClientHello is shorter than dflockd's longest line, so a plaintext dflockd would wait for more of
  // it instead of answering, and the handshake would wait out the connect timeout: the core offers its
  // plaintext probe (and shakes hands once more without it if a TLS server refuses it).
  probeAlpn: true,
  unrefTimer(handle) {
    Deno.unrefTimer(handle as unknown as number);
  },
  // A net.Socket the user created (through this runtime's node:net) for a low-level call.
  adopt(value) {
    return isNodeStyleSocket(value) ? new NodeStream(value) : undefined;
  },
};
