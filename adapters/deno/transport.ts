/**
 * The Deno adapter: moves bytes over Deno's native TCP connections
 * (`Deno.connect`), not over Deno's `node:net` emulation. No protocol here.
 *
 * @module
 */
import { ConnectionError } from "../../src/errors.ts";
import type { ByteStream, ConnectTarget, Runtime, StreamHandlers } from "../../src/transport.ts";
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
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), target.timeoutMs);
  Deno.unrefTimer(timer as unknown as number);
  try {
    const conn = await Deno.connect({ hostname: target.host, port: target.port, signal: controller.signal });
    conn.setNoDelay(true);
    return new DenoStream(conn);
  } catch (err) {
    if (controller.signal.aborted) {
      throw new ConnectionError(`connecting to ${where} timed out after ${target.timeoutMs} ms`, {
        code: "TIMEOUT",
        cause: err,
      });
    }
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
