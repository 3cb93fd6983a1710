/**
 * The Bun adapter: moves bytes over Bun's native sockets (`Bun.connect`), not
 * over Bun's `node:net` emulation. No protocol here.
 *
 * @module
 */
import { ConnectionError } from "../../src/errors.ts";
import type { ByteStream, ConnectTarget, Runtime, StreamHandlers } from "../../src/transport.ts";
import { isNodeStyleSocket, NodeStream } from "../node/stream.ts";

interface Slot {
  stream: BunStream | undefined;
}

/**
 * The part of Bun's socket API this adapter uses, declared here so the
 * package needs no Bun type definitions (the JSR package included).
 */
interface Socket<Data> {
  data: Data;
  write(bytes: Uint8Array): number;
  terminate(): void;
  setNoDelay(noDelay?: boolean): unknown;
}

interface BunNet {
  connect<Data>(options: {
    hostname: string;
    port: number;
    data: Data;
    socket: {
      binaryType: "uint8array";
      open(sock: Socket<Data>): void;
      data(sock: Socket<Data>, chunk: Uint8Array): void;
      drain(sock: Socket<Data>): void;
      end(sock: Socket<Data>): void;
      close(sock: Socket<Data>, error?: Error): void;
      error(sock: Socket<Data>, error: Error): void;
      connectError(sock: Socket<Data>, error: Error): void;
    };
  }): Promise<Socket<Data>>;
}

/** `Bun`, looked up when used (so that this module also loads outside Bun). */
function bun(): BunNet {
  return (globalThis as unknown as { Bun: BunNet }).Bun;
}

/**
 * A Bun socket seen through the core's {@link ByteStream} interface. Bun's
 * `write()` may take only part of the bytes; the rest waits for `drain`.
 */
class BunStream implements ByteStream {
  readonly #sock: Socket<Slot>;
  #handlers: StreamHandlers | undefined;
  #early: Uint8Array[] = [];
  #backlog: Uint8Array[] = [];
  #ended = false;
  #earlyEnd: { error?: unknown } | undefined;

  constructor(sock: Socket<Slot>) {
    this.#sock = sock;
  }

  start(h: StreamHandlers): void {
    this.#handlers = h;
    for (const c of this.#early.splice(0)) h.data(c);
    if (this.#earlyEnd) this.onEnd(this.#earlyEnd.error);
  }

  /** @internal Called from the socket's `data` handler. */
  onData(chunk: Uint8Array): void {
    if (this.#handlers) this.#handlers.data(chunk);
    else this.#early.push(Uint8Array.prototype.slice.call(chunk));
  }

  /** @internal Called when the socket is gone. */
  onEnd(error?: unknown): void {
    if (this.#ended) return;
    if (!this.#handlers) {
      this.#earlyEnd = { error };
      return;
    }
    this.#ended = true;
    this.#backlog = [];
    this.#handlers.end(error);
  }

  /** @internal Called from the socket's `drain` handler. */
  onDrain(): void {
    while (this.#backlog.length > 0) {
      const next = this.#backlog[0] as Uint8Array;
      const n = this.#sock.write(next);
      if (n < next.length) {
        this.#backlog[0] = next.subarray(Math.max(0, n));
        return;
      }
      this.#backlog.shift();
    }
  }

  write(bytes: Uint8Array): void {
    if (this.#ended) return;
    if (this.#backlog.length > 0) {
      this.#backlog.push(bytes);
      return;
    }
    const n = this.#sock.write(bytes);
    if (n < bytes.length) this.#backlog.push(bytes.subarray(Math.max(0, n)));
  }

  close(): void {
    this.#sock.terminate();
    this.onEnd();
  }
}

function connectBun(target: ConnectTarget): Promise<ByteStream> {
  const where = `${target.host}:${target.port}`;
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new ConnectionError(`connecting to ${where} timed out after ${target.timeoutMs} ms`, { code: "TIMEOUT" }));
    }, target.timeoutMs);
    (timer as { unref?: () => void }).unref?.();
    bun()
      .connect<Slot>({
        hostname: target.host,
        port: target.port,
        data: { stream: undefined },
        socket: {
          binaryType: "uint8array",
          open(sock) {
            sock.setNoDelay(true);
          },
          data(sock, chunk) {
            sock.data.stream?.onData(chunk);
          },
          drain(sock) {
            sock.data.stream?.onDrain();
          },
          end(sock) {
            sock.data.stream?.onEnd();
            sock.terminate();
          },
          close(sock, error) {
            sock.data.stream?.onEnd(error);
          },
          error(sock, error) {
            sock.data.stream?.onEnd(error);
          },
          connectError() {
            // The promise below rejects with the same error.
          },
        },
      })
      .then(
        (sock) => {
          clearTimeout(timer);
          if (settled) {
            sock.terminate();
            return;
          }
          settled = true;
          const stream = new BunStream(sock);
          sock.data.stream = stream;
          resolve(stream);
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          const message = err instanceof Error ? err.message : String(err);
          reject(new ConnectionError(`cannot connect to ${where}: ${message}`, { cause: err }));
        },
      );
  });
}

/** The Bun {@link Runtime}: `Bun.connect` sockets and unref'd timers. */
export const bunRuntime: Runtime = {
  name: "bun",
  connect: connectBun,
  unrefTimer(handle) {
    (handle as { unref?: () => void }).unref?.();
  },
  // A net.Socket the user created (through this runtime's node:net) for a low-level call.
  adopt(value) {
    return isNodeStyleSocket(value) ? new NodeStream(value) : undefined;
  },
};
