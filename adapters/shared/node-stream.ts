/**
 * A Node-style socket (`net.Socket`, or Bun's and Deno's emulation of it) seen
 * through the core's {@link ByteStream} interface. Used by the Node adapter for
 * its own connections, and by every adapter to adopt a socket the *user*
 * created and passed to a low-level function. Imports nothing from `node:net`.
 *
 * @module
 */
import type { Latin1Decoder } from "../../src/protocol.ts";
import type { ByteStream, StreamHandlers } from "../../src/transport.ts";

/** The part of Node's `Buffer` used to decode replies. */
interface LatinBuffer {
  latin1Slice?(start: number, end: number): string;
}

/**
 * A Node-style socket's chunks are `Buffer`s (Node's, or Bun's and Deno's
 * emulation of it), which decode Latin-1 natively: cheaper per reply than
 * the core's strict UTF-8 decoder, which still reads every non-ASCII line,
 * and any chunk that is not a `Buffer` after all.
 */
export const bufferLatin1: Latin1Decoder = (bytes, start, end) => (bytes as LatinBuffer).latin1Slice?.(start, end);

/** The part of `net.Socket` this wrapper uses. */
export interface NodeStyleSocket {
  readonly destroyed: boolean;
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "close" | "end", listener: () => void): unknown;
  write(bytes: Uint8Array): boolean;
  write(text: string, encoding: "utf8"): boolean;
  destroy(): unknown;
}

/** Whether `value` looks like a `net.Socket` (duck-typed, so no `node:net` import is needed). */
export function isNodeStyleSocket(value: unknown): value is NodeStyleSocket {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.on === "function" &&
    typeof v.write === "function" &&
    typeof v.destroy === "function" &&
    typeof v.setNoDelay === "function" &&
    typeof v.destroyed === "boolean"
  );
}

/**
 * Wraps a Node-style socket. It listens from construction, so nothing that
 * happens before {@link NodeStream.start} is lost (or left without an error
 * listener). Its `write` queues internally under backpressure, in order.
 */
export class NodeStream implements ByteStream {
  readonly #sock: NodeStyleSocket;
  #handlers: StreamHandlers | undefined;
  #early: Uint8Array[] = [];
  #ended: { error?: unknown } | undefined;
  #reported = false;
  readonly latin1: Latin1Decoder = bufferLatin1;

  /**
   * @param sock The socket to wrap; it may still be connecting.
   * @param ownReads `true` when the socket was made with Node's `onread`
   * option and its callback calls {@link NodeStream.receive}; else the
   * stream listens to `data` events.
   */
  constructor(sock: NodeStyleSocket, ownReads = false) {
    this.#sock = sock;
    if (!ownReads) sock.on("data", (chunk: Uint8Array) => this.receive(chunk));
    sock.on("error", (err: Error) => this.#end(err));
    sock.on("close", () => this.#end());
    // A half-closed peer sends no more replies: treat it as closed.
    sock.on("end", () => this.#end());
    if (sock.destroyed) this.#end();
  }

  /**
   * Bytes read from the socket. They are used before this returns: what
   * must outlive the call is copied (here, and by the core's line decoder),
   * so the caller may reuse the memory at once.
   */
  receive(chunk: Uint8Array): void {
    if (this.#handlers) this.#handlers.data(chunk);
    else this.#early.push(Uint8Array.prototype.slice.call(chunk));
  }

  start(h: StreamHandlers): void {
    this.#handlers = h;
    for (const chunk of this.#early.splice(0)) h.data(chunk);
    if (this.#ended) this.#report();
  }

  #end(error?: unknown): void {
    this.#ended ??= { error };
    if (this.#handlers) this.#report();
  }

  #report(): void {
    if (this.#reported || !this.#handlers || !this.#ended) return;
    this.#reported = true;
    this.#handlers.end(this.#ended.error);
  }

  write(bytes: Uint8Array): void {
    this.#sock.write(bytes);
  }

  /** Node writes a string without the intermediate bytes: measurably cheaper per request. */
  writeText(text: string): void {
    this.#sock.write(text, "utf8");
  }

  close(): void {
    this.#sock.destroy();
  }
}
