/**
 * The Node.js adapter: moves bytes over `node:net` sockets, or `node:tls` ones
 * when TLS is asked for. No protocol here.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createConnection, isIP, Socket } from "node:net";
import { checkServerIdentity, type PeerCertificate, connect as tlsConnect } from "node:tls";
import type { ByteStream, DialRequest, DialStep, Runtime, StreamHandlers } from "../../src/transport.ts";
import { type Deferred, deferred } from "../shared/deferred.ts";
import { NodeStream } from "../shared/node-stream.ts";

/**
 * A socket this adapter opened. Once the core has it (`start`), it no longer
 * keeps the process alive by itself; the core refs it while a request waits.
 * (A socket the user created and passes in stays a plain {@link NodeStream}:
 * its lifetime is the user's business.)
 */
class OwnSocketStream extends NodeStream {
  readonly #socket: Socket;

  constructor(sock: Socket, ownReads: boolean) {
    super(sock, ownReads);
    this.#socket = sock;
  }

  override start(h: StreamHandlers): void {
    this.#socket.unref();
    super.start(h);
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }
}

let readBuffer: Buffer | undefined;

/**
 * The one read buffer of every plain TCP connection (64 KiB, made on first
 * use): a `Buffer`, so that the core decodes replies with its `latin1Slice`.
 */
function sharedReadBuffer(): Buffer {
  readBuffer ??= Buffer.allocUnsafe(64 * 1024);
  return readBuffer;
}

/** A socket being opened: its TCP and TLS steps, what it read before it became a stream, and its listeners. */
interface Opening {
  readonly tcp: Deferred<Socket>;
  readonly secure: Deferred<Socket>;
  readonly plain: boolean;
  /** Plain TCP: what the onread callback reads before the stream exists (a server that speaks first). */
  readonly early: Uint8Array[];
  stream: OwnSocketStream | undefined;
  detach(): void;
}

const openings = new WeakMap<Socket, Opening>();

/**
 * Start a TCP (or, with `request.tls`, a TLS) connection: done at TCP
 * connect; its handshake is {@link handshake}'s. `node:tls` checks the TLS
 * material synchronously and throws.
 */
function connect(request: DialRequest): DialStep<Socket> {
  const t = request.tls;
  const sni = t?.serverName ?? request.host;
  const opening: Opening = {
    tcp: deferred(),
    secure: deferred(),
    plain: t === undefined,
    early: [],
    stream: undefined,
    detach: () => {},
  };
  const sock = t
    ? tlsConnect({
        host: request.host,
        port: request.port,
        // SNI must be a name, not an address; verification still covers addresses.
        servername: isIP(sni) ? undefined : sni,
        checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(sni, cert),
        ca: t.ca,
        cert: t.cert,
        key: t.key,
        rejectUnauthorized: t.verify,
      })
    : createConnection({
        host: request.host,
        port: request.port,
        // Reads straight into one buffer shared by every connection, past
        // the stream machinery of "data" events: about 2.5 µs less CPU per
        // request/reply on Node 20. Sharing is safe because each read is
        // handed over and used (or copied) before the next one is made.
        onread: {
          buffer: sharedReadBuffer(),
          callback: (n: number, buf: Uint8Array): boolean => {
            const chunk = buf.subarray(0, n);
            if (opening.stream !== undefined) opening.stream.receive(chunk);
            else opening.early.push(Uint8Array.prototype.slice.call(chunk));
            return true; // keep reading
          },
        },
      });
  sock.setNoDelay(true);
  let connected = false;
  const onConnect = (): void => {
    connected = true;
    opening.tcp.resolve(sock);
  };
  const onError = (err: Error): void => (connected ? opening.secure : opening.tcp).reject(err);
  // A peer that closes during the handshake.
  const onClose = (): void =>
    (connected ? opening.secure : opening.tcp).reject(new Error("the server closed the connection"));
  const onSecure = (): void => opening.secure.resolve(sock);
  sock.once("connect", onConnect);
  sock.on("error", onError);
  if (t) {
    sock.once("close", onClose);
    sock.once("secureConnect", onSecure);
  }
  opening.detach = () => {
    sock.off("connect", onConnect);
    sock.off("error", onError);
    sock.off("close", onClose);
    sock.off("secureConnect", onSecure);
  };
  openings.set(sock, opening);
  return { result: opening.tcp.promise, cancel: () => close(sock) };
}

/** Done once the TLS handshake `connect` started has completed. */
function handshake(sock: Socket): DialStep<Socket> {
  const opening = openings.get(sock);
  return { result: opening ? opening.secure.promise : Promise.reject(new Error("not a socket being opened")) };
}

function stream(sock: Socket): ByteStream {
  const opening = openings.get(sock);
  openings.delete(sock);
  opening?.detach();
  // NodeStream attaches its own listeners at once, so no event is missed.
  const s = new OwnSocketStream(sock, opening?.plain ?? false);
  if (opening !== undefined) {
    opening.stream = s;
    for (const chunk of opening.early.splice(0)) s.receive(chunk);
  }
  return s;
}

function close(sock: Socket): void {
  openings.get(sock)?.detach();
  openings.delete(sock);
  sock.on("error", () => {});
  sock.destroy();
}

/**
 * The Node.js {@link Runtime}: `node:net` sockets, unref'd timers, and
 * adoption of a caller's own `net.Socket` for the low-level functions.
 */
export const nodeRuntime: Runtime<Socket> = {
  name: "node",
  connect,
  handshake,
  stream,
  close,
  unrefTimer(handle) {
    (handle as { unref?: () => void }).unref?.();
  },
  adopt(value) {
    return value instanceof Socket ? new NodeStream(value) : undefined;
  },
};
