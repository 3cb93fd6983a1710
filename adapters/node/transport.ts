/**
 * The Node.js adapter: moves bytes over `node:net` sockets. No protocol here.
 *
 * @module
 */
import { createConnection, Socket } from "node:net";
import { ConnectionError } from "../../src/errors.ts";
import type { ByteStream, ConnectTarget, Runtime } from "../../src/transport.ts";
import { NodeStream } from "./stream.ts";

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
