/**
 * The Node.js adapter: moves bytes over `node:net` sockets, or `node:tls` ones
 * when TLS is asked for. No protocol here.
 *
 * @module
 */
import { createConnection, isIP, Socket } from "node:net";
import { checkServerIdentity, type PeerCertificate, connect as tlsConnect } from "node:tls";
import { ConnectionError } from "../../src/errors.ts";
import {
  type ByteStream,
  type ConnectTarget,
  connectTimeoutError,
  type Runtime,
  tlsHandshakeError,
} from "../../src/transport.ts";
import { NodeStream } from "./stream.ts";

function connectNode(target: ConnectTarget): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const where = `${target.host}:${target.port}`;
    const t = target.tls;
    const sock: Socket = t
      ? tlsConnect({
          host: target.host,
          port: target.port,
          // SNI must be a name, not an address; verification still uses the host.
          servername: t.serverName ?? (isIP(target.host) ? undefined : target.host),
          ...(t.serverName
            ? {
                checkServerIdentity: (_host: string, cert: PeerCertificate) =>
                  checkServerIdentity(t.serverName as string, cert),
              }
            : {}),
          ca: t.ca,
          cert: t.cert,
          key: t.key,
          rejectUnauthorized: t.verify,
        })
      : createConnection({ host: target.host, port: target.port });
    sock.setNoDelay(true);
    let connected = false;
    const fail = (err: ConnectionError): void => {
      clearTimeout(timer);
      sock.removeAllListeners();
      sock.on("error", () => {});
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => {
      const phase = connected && t !== undefined ? "tls" : "connect";
      fail(connectTimeoutError(where, target.timeoutMs, phase));
    }, target.timeoutMs);
    timer.unref();
    sock.once("connect", () => {
      connected = true;
    });
    sock.once("error", (err) =>
      fail(
        t && connected
          ? tlsHandshakeError(where, err)
          : new ConnectionError(`cannot connect to ${where}: ${err.message}`, { cause: err }),
      ),
    );
    // A peer that closes during the handshake.
    if (t) sock.once("close", () => fail(tlsHandshakeError(where, new Error("the server closed the connection"))));
    sock.once(t ? "secureConnect" : "connect", () => {
      clearTimeout(timer);
      sock.removeAllListeners();
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
