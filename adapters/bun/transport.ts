/**
 * The Bun adapter: moves bytes over Bun's native sockets (`Bun.connect`, with
 * its `tls` option for TLS), not over Bun's `node:net` or `node:tls`
 * emulation. No protocol here.
 *
 * @module
 */

import { abortError } from "../../src/cancel.ts";
import { type ConnectionError, InvalidArgumentError, type LockError } from "../../src/errors.ts";
import type { Latin1Decoder } from "../../src/protocol.ts";
import {
  type ByteStream,
  type ConnectTarget,
  connectFailedError,
  connectTimeoutError,
  hostPort,
  type Runtime,
  type StreamHandlers,
  tlsHandshakeError,
} from "../../src/transport.ts";
import { utf8Length } from "../../src/validate.ts";
import { bufferLatin1, isNodeStyleSocket, NodeStream } from "../node/stream.ts";

interface Slot {
  stream: BunStream | undefined;
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

function connectBun(target: ConnectTarget): Promise<ByteStream> {
  const where = hostPort(target.host, target.port);
  const t = target.tls;
  return new Promise((resolve, reject) => {
    const slot: Slot = { stream: undefined };
    let settled = false;
    let opened: Socket<Slot> | undefined;
    const settle = (err: LockError | undefined, sock?: Socket<Slot>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      target.signal?.removeEventListener("abort", onAbort);
      if (err !== undefined || sock === undefined) {
        (sock ?? opened)?.terminate();
        reject(err);
        return;
      }
      const stream = new BunStream(sock);
      slot.stream = stream;
      resolve(stream);
    };
    const failure = (error: unknown, fallback: string): ConnectionError =>
      t !== undefined && opened !== undefined
        ? tlsHandshakeError(where, error ?? new Error(fallback))
        : connectFailedError(where, error, fallback);
    const timer = setTimeout(() => {
      const phase = opened !== undefined && t !== undefined ? "tls" : "connect";
      settle(connectTimeoutError(where, target.timeoutMs, phase));
    }, target.timeoutMs);
    // Bun cannot abort a pending Bun.connect; an aborted attempt rejects at
    // once and closes the socket as soon as it opens.
    const onAbort = (): void => settle(abortError(target.signal));
    if (target.signal?.aborted) onAbort();
    else target.signal?.addEventListener("abort", onAbort, { once: true });
    (timer as { unref?: () => void }).unref?.();
    let connecting: Promise<Socket<Slot>>;
    try {
      connecting = bun().connect<Slot>({
        hostname: target.host,
        port: target.port,
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
            opened = sock;
            sock.setNoDelay(true);
            if (settled) sock.terminate();
            else if (t === undefined) settle(undefined, sock);
          },
          handshake(sock, success, authorizationError) {
            // Bun reports a name mismatch as !success even without rejectUnauthorized: with
            // verification explicitly off, any completed handshake is accepted.
            if (t?.verify === false || (success && authorizationError === null)) settle(undefined, sock);
            else settle(tlsHandshakeError(where, authorizationError ?? new Error("handshake failed")), sock);
          },
          data(sock, chunk) {
            sock.data.stream?.onData(chunk);
          },
          drain(sock) {
            sock.data.stream?.onDrain();
          },
          end(sock) {
            if (!settled) settle(failure(undefined, "the server closed the connection"), sock);
            sock.data.stream?.onEnd();
            sock.terminate();
          },
          close(sock, error) {
            if (!settled) settle(failure(error, "the server closed the connection"), sock);
            sock.data.stream?.onEnd(error);
          },
          error(sock, error) {
            if (!settled) settle(failure(error, "connection error"), sock);
            sock.data.stream?.onEnd(error);
          },
          connectError(_sock, error) {
            settle(connectFailedError(where, error));
          },
        },
      });
    } catch (err) {
      // Bun checks the TLS material synchronously.
      settle(
        new InvalidArgumentError(`Bun rejected the tls options: ${err instanceof Error ? err.message : String(err)}`),
      );
      return;
    }
    connecting.then(
      (sock) => {
        if (settled && slot.stream === undefined) sock.terminate();
      },
      (err: unknown) => settle(failure(err, "connection failed")),
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
