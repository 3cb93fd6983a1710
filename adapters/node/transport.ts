/**
 * The Node.js adapter: moves bytes over `node:net` sockets. No protocol here.
 *
 * @module
 */
import { createConnection, Socket } from "node:net";
import { ConnectionError } from "../../src/errors.ts";
import type { ByteStream, ConnectTarget, Runtime, StreamHandlers } from "../../src/transport.ts";

/** A `net.Socket` seen through the core's {@link ByteStream} interface. */
class NodeStream implements ByteStream {
  readonly #sock: Socket;
  #ended = false;

  constructor(sock: Socket) {
    this.#sock = sock;
  }

  start(h: StreamHandlers): void {
    const end = (error?: unknown): void => {
      if (this.#ended) return;
      this.#ended = true;
      h.end(error);
    };
    this.#sock.on("data", (chunk: Uint8Array) => h.data(chunk));
    this.#sock.on("error", (err) => end(err));
    this.#sock.on("close", () => end());
    // A half-closed peer sends no more replies: treat it as closed.
    this.#sock.on("end", () => end());
    if (this.#sock.destroyed) end();
  }

  write(bytes: Uint8Array): void {
    // Node queues what the kernel does not take yet; ordering is preserved.
    this.#sock.write(bytes);
  }

  close(): void {
    this.#sock.destroy();
  }
}

function connectNode(target: ConnectTarget): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: target.host, port: target.port, noDelay: true });
    const where = `${target.host}:${target.port}`;
    const fail = (err: ConnectionError): void => {
      clearTimeout(timer);
      sock.removeAllListeners();
      sock.on("error", () => {});
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        fail(new ConnectionError(`connecting to ${where} timed out after ${target.timeoutMs} ms`, { code: "TIMEOUT" })),
      target.timeoutMs,
    );
    timer.unref();
    sock.once("error", (err) =>
      fail(new ConnectionError(`cannot connect to ${where}: ${err.message}`, { cause: err })),
    );
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.removeAllListeners("error");
      resolve(new NodeStream(sock));
    });
  });
}

/**
 * The Node.js {@link Runtime}: `node:net` sockets, unref'd timers, and
 * adoption of a caller's own `net.Socket` for the low-level functions.
 */
export const nodeRuntime: Runtime = {
  name: "node",
  connect: connectNode,
  unrefTimer(handle) {
    (handle as { unref?: () => void }).unref?.();
  },
  adopt(value) {
    return value instanceof Socket ? new NodeStream(value) : undefined;
  },
};
