/**
 * The Deno adapter: moves bytes over Deno's native connections
 * (`Deno.connect`, `Deno.connectTls`), not over Deno's `node:net` or
 * `node:tls` emulation. No protocol here.
 *
 * @module
 */
import { ConnectionError, InvalidArgumentError } from "../../src/errors.ts";
import {
  type ByteStream,
  type ConnectTarget,
  connectTimeoutError,
  type Runtime,
  type StreamHandlers,
  tlsHandshakeError,
} from "../../src/transport.ts";
import { isNodeStyleSocket, NodeStream } from "../node/stream.ts";

const READ_BUFFER_BYTES = 16 * 1024;

/**
 * A `Deno.Conn` seen through the core's {@link ByteStream} interface. Reads
 * run in a loop into one reused buffer; writes are chained, and each is
 * repeated until the kernel has taken every byte (Deno may write partially).
 */
class DenoStream implements ByteStream {
  readonly #conn: Deno.Conn;
  #handlers: StreamHandlers | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;
  #ended = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  start(h: StreamHandlers): void {
    this.#handlers = h;
    void this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    let error: unknown;
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        if (this.#closed) return;
        this.#handlers?.data(buf.subarray(0, n));
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

  write(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#writing = this.#writing.then(async () => {
      let off = 0;
      while (off < bytes.length && !this.#closed) {
        off += await this.#conn.write(bytes.subarray(off));
      }
    });
    this.#writing.catch((err: unknown) => this.#end(err));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer.
    }
    // A pending read resolves or rejects after close(); report the end now.
    queueMicrotask(() => this.#end());
  }
}

async function connectDeno(target: ConnectTarget): Promise<ByteStream> {
  const where = `${target.host}:${target.port}`;
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
  let conn: Deno.Conn | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
    // A TLS handshake cannot take a signal: closing the connection ends it.
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  }, target.timeoutMs);
  Deno.unrefTimer(timer as unknown as number);
  let connected = false;
  try {
    if (t !== undefined && t.cert !== undefined && t.key !== undefined) {
      // A client certificate needs connectTls (startTls cannot send one).
      conn = await Deno.connectTls({
        hostname: target.host,
        port: target.port,
        cert: t.cert,
        key: t.key,
        ...(t.ca !== undefined && { caCerts: t.ca }),
      });
      connected = true;
      await (conn as Deno.TlsConn).handshake();
    } else {
      const tcp = await Deno.connect({ hostname: target.host, port: target.port, signal: controller.signal });
      tcp.setNoDelay(true);
      conn = tcp;
      connected = true;
      if (t !== undefined) {
        conn = await Deno.startTls(tcp, { hostname: target.host, ...(t.ca !== undefined && { caCerts: t.ca }) });
        await (conn as Deno.TlsConn).handshake();
      }
    }
    return new DenoStream(conn);
  } catch (err) {
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
    if (timedOut) {
      const phase = connected && t !== undefined ? "tls" : "connect";
      throw connectTimeoutError(where, target.timeoutMs, phase);
    }
    if (t !== undefined && connected) throw tlsHandshakeError(where, err);
    const message = err instanceof Error ? err.message : String(err);
    throw new ConnectionError(`cannot connect to ${where}: ${message}`, { cause: err });
  } finally {
    clearTimeout(timer);
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
