/**
 * A Node-style socket (`net.Socket`, or Bun's and Deno's emulation of it) seen
 * through the core's {@link ByteStream} interface. Used by the Node adapter for
 * its own connections, and by every adapter to adopt a socket the *user*
 * created and passed to a low-level function. Imports nothing from `node:net`.
 *
 * @module
 */
import type { ByteStream, StreamHandlers } from "../../src/transport.ts";

/** The part of `net.Socket` this wrapper uses. */
export interface NodeStyleSocket {
  readonly destroyed: boolean;
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "close" | "end", listener: () => void): unknown;
  write(bytes: Uint8Array): boolean;
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

/** Wraps a Node-style socket. Its `write` queues internally under backpressure, in order. */
export class NodeStream implements ByteStream {
  readonly #sock: NodeStyleSocket;
  #ended = false;

  /** @param sock The socket to wrap; it may still be connecting. */
  constructor(sock: NodeStyleSocket) {
    this.#sock = sock;
  }

  start(h: StreamHandlers): void {
    const end = (error?: unknown): void => {
      if (this.#ended) return;
      this.#ended = true;
      h.end(error);
    };
    this.#sock.on("data", (chunk: Uint8Array) => h.data(chunk));
    this.#sock.on("error", (err: Error) => end(err));
    this.#sock.on("close", () => end());
    // A half-closed peer sends no more replies: treat it as closed.
    this.#sock.on("end", () => end());
    if (this.#sock.destroyed) end();
  }

  write(bytes: Uint8Array): void {
    this.#sock.write(bytes);
  }

  close(): void {
    this.#sock.destroy();
  }
}
