/**
 * The Bun adapter: moves bytes over Bun's native sockets (`Bun.connect`, with
 * its `tls` option for TLS), not over Bun's `node:net` or `node:tls`
 * emulation. No protocol here.
 *
 * @module
 */

import type { Latin1Decoder } from "../../src/protocol.ts";
import type { ByteStream, DialRequest, DialStep, Runtime, StreamHandlers } from "../../src/transport.ts";
import { utf8Length } from "../../src/validate.ts";
import { type Deferred, deferred } from "../shared/deferred.ts";
import { bufferLatin1, isNodeStyleSocket, NodeStream } from "../shared/node-stream.ts";

/** A socket's own record: its stream once open, and its TCP and TLS steps while being opened. */
interface Slot {
  stream: BunStream | undefined;
  readonly tcp: Deferred<Socket<Slot>>;
  readonly secure: Deferred<Socket<Slot>>;
}

/**
 * The part of Bun's socket API this adapter uses, declared here so the
 * package needs no Bun type definitions (the JSR package included).
 */
interface Socket<Data> {
  data: Data;
  write(data: Uint8Array | string): number;
  terminate(): void;
  setNoDelay(noDelay?: boolean): unknown;
  ref(): void;
  unref(): void;
}

interface BunNet {
  connect<Data>(options: {
    hostname: string;
    port: number;
    data: Data;
    tls?:
      | {
          ca?: string[] | undefined;
          cert?: string | undefined;
          key?: string | undefined;
          serverName?: string | undefined;
          rejectUnauthorized: boolean;
        }
      | undefined;
    socket: {
      binaryType: "buffer";
      open(sock: Socket<Data>): void;
      handshake(sock: Socket<Data>, success: boolean, authorizationError: Error | null): void;
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
const encoder = new TextEncoder();

function bun(): BunNet {
  return (globalThis as unknown as { Bun: BunNet }).Bun;
}

/**
 * A Bun socket seen through the core's {@link ByteStream} interface. Bun's
 * `write()` may take only part of the bytes; the rest waits for `drain`.
 * Once started it does not keep the process alive unless the core refs it.
 */
class BunStream implements ByteStream {
  readonly #sock: Socket<Slot>;
  #handlers: StreamHandlers | undefined;
  #early: Uint8Array[] = [];
  #backlog: Uint8Array[] = [];
  #ended = false;
  #earlyEnd: { error?: unknown } | undefined;

  /** Chunks are Bun's `Buffer`s (`binaryType: "buffer"`), which decode Latin-1 natively. */
  readonly latin1: Latin1Decoder = bufferLatin1;

  constructor(sock: Socket<Slot>) {
    this.#sock = sock;
  }

  start(h: StreamHandlers): void {
    this.unref();
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
      this.#earlyEnd ??= { error };
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

  /**
   * Bun writes a string without the intermediate `Uint8Array` the core would
   * encode. Its return counts UTF-8 bytes; what a partial write left is
   * encoded and kept for `drain`.
   */
  writeText(text: string): void {
    if (this.#ended) return;
    if (this.#backlog.length > 0) {
      this.#backlog.push(encoder.encode(text));
      return;
    }
    const n = this.#sock.write(text);
    if (n < text.length || n < utf8Length(text)) this.#backlog.push(encoder.encode(text).subarray(Math.max(0, n)));
  }

  close(): void {
    this.#sock.terminate();
    this.onEnd();
  }

  ref(): void {
    if (!this.#ended) this.#sock.ref();
  }

  unref(): void {
    if (!this.#ended) this.#sock.unref();
  }
}

/**
 * Start `Bun.connect` (with its `tls` option for TLS): done at `open`; the
 * TLS handshake is {@link handshake}'s. Bun checks the TLS material
 * synchronously and throws. A pending `Bun.connect` cannot be cancelled: the
 * core closes the socket when it opens.
 */
function connect(request: DialRequest): DialStep<Socket<Slot>> {
  const t = request.tls;
  const slot: Slot = { stream: undefined, tcp: deferred(), secure: deferred() };
  /** The step under way fails: the TCP connect until `open`, then the handshake. */
  const failed = (error: unknown, fallback: string): void =>
    (slot.stream === undefined ? slot.tcp : slot.secure).reject(error instanceof Error ? error : new Error(fallback));
  const connecting = bun().connect<Slot>({
    hostname: request.host,
    port: request.port,
    data: slot,
    ...(t && {
      tls: {
        ca: t.ca,
        cert: t.cert,
        key: t.key,
        serverName: t.serverName,
        rejectUnauthorized: t.verify,
      },
    }),
    socket: {
      binaryType: "buffer",
      open(sock) {
        sock.setNoDelay(true);
        sock.data.stream = new BunStream(sock);
        sock.data.tcp.resolve(sock);
      },
      handshake(sock, success, authorizationError) {
        // Bun reports a name mismatch as !success even without rejectUnauthorized: with
        // verification explicitly off, any completed handshake is accepted.
        if (t?.verify === false || (success && authorizationError === null)) sock.data.secure.resolve(sock);
        else sock.data.secure.reject(authorizationError ?? new Error("handshake failed"));
      },
      data(sock, chunk) {
        sock.data.stream?.onData(chunk);
      },
      drain(sock) {
        sock.data.stream?.onDrain();
      },
      end(sock) {
        failed(undefined, "the server closed the connection");
        sock.data.stream?.onEnd();
        sock.terminate();
      },
      close(sock, error) {
        failed(error, "the server closed the connection");
        sock.data.stream?.onEnd(error);
      },
      error(sock, error) {
        failed(error, "connection error");
        sock.data.stream?.onEnd(error);
      },
      connectError(_sock, error) {
        slot.tcp.reject(error);
      },
    },
  });
  connecting.then(undefined, (err: unknown) => failed(err, "connection failed"));
  return { result: slot.tcp.promise };
}

/** Done once the TLS handshake of an open socket has completed. */
function handshake(sock: Socket<Slot>): DialStep<Socket<Slot>> {
  return { result: sock.data.secure.promise };
}

function stream(sock: Socket<Slot>): ByteStream {
  sock.data.stream ??= new BunStream(sock);
  return sock.data.stream;
}

function close(sock: Socket<Slot>): void {
  sock.terminate();
}

/** The Bun {@link Runtime}: `Bun.connect` sockets and unref'd timers. */
export const bunRuntime: Runtime<Socket<Slot>> = {
  name: "bun",
  connect,
  handshake,
  stream,
  close,
  unrefTimer(handle) {
    (handle as { unref?: () => void }).unref?.();
  },
  // A net.Socket the user created (through this runtime's node:net) for a low-level call.
  adopt(value) {
    return isNodeStyleSocket(value) ? new NodeStream(value) : undefined;
  },
};
