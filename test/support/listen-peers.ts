/**
 * Helpers for test/transport/listen.test.ts: what an accepted connection
 * reported (ServerSide), the node:net / node:tls peer (Peer), a proxy that
 * can stop reading from the server (Holdback), and bounded, event-driven waits.
 */
import * as net from "node:net";
import type { ServerConn } from "../../src/server/listen.ts";

/** A promise with its resolver. */
export function signal<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** `p`, or a rejection naming `what` if it takes longer than `ms` (a bound on a hang, not a wait). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Resolves after `ms`: only where a test must see that something does not
 * happen (a transfer held back), never to wait for something that will.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `p` has settled: read it after an await (or a sleep). */
export function settled(p: Promise<unknown>): { readonly done: boolean } {
  const state = { done: false };
  void p.then(
    () => {
      state.done = true;
    },
    () => {
      state.done = true;
    },
  );
  return state;
}

/** Bytes 0..n-1 of a recognisable pattern, so that a lost or reordered chunk shows. */
export function pattern(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed + (i >> 10)) & 0xff;
  return b;
}

/** Where `got` first differs from `want` (a length difference counts), or -1: cheaper than toEqual on megabytes. */
export function mismatch(got: Uint8Array, want: Uint8Array): number {
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) if (got[i] !== want[i]) return i;
  return got.length === want.length ? -1 : n;
}

/** The chunks, joined. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** One accepted connection and what the listener reported on it, in order. */
export class ServerSide {
  readonly log: string[] = [];
  readonly chunks: Uint8Array[] = [];
  readonly ended = signal();
  readonly closed = signal();
  closedCount = 0;
  #want: { n: number; resolve: () => void } | undefined;

  /** Called with each chunk after it is recorded (a test's server logic). */
  onData: ((b: Uint8Array) => void) | undefined;

  constructor(readonly conn: ServerConn) {}

  get received(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }

  /** Resolves once `n` bytes in all have come. */
  bytes(n: number): Promise<void> {
    if (this.received >= n) return Promise.resolve();
    const s = signal();
    this.#want = { n, resolve: s.resolve };
    return s.promise;
  }

  events = {
    data: (b: Uint8Array) => {
      this.log.push("data");
      this.chunks.push(b.slice());
      if (this.#want !== undefined && this.received >= this.#want.n) this.#want.resolve();
      this.onData?.(b);
    },
    end: () => {
      this.log.push("end");
      this.ended.resolve();
    },
    closed: () => {
      this.log.push("closed");
      this.closedCount++;
      this.closed.resolve();
    },
  };
}

/** The peer: a node:net or node:tls client socket, with what it received. */
export class Peer {
  readonly chunks: Buffer[] = [];
  readonly ended = signal();
  readonly closed = signal();
  /** EOF, an error or the close, whichever comes first: the server has let go. */
  readonly gone = signal();
  readonly connected = signal();
  #want: { n: number; resolve: () => void } | undefined;

  constructor(readonly sock: net.Socket) {
    sock.on("data", (b: Buffer) => {
      this.chunks.push(b);
      if (this.#want !== undefined && this.received >= this.#want.n) this.#want.resolve();
    });
    sock.on("end", () => {
      this.ended.resolve();
      this.gone.resolve();
    });
    sock.on("error", () => this.gone.resolve());
    sock.on("close", () => {
      this.closed.resolve();
      this.gone.resolve();
    });
  }

  get received(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("latin1");
  }

  bytes(n: number): Promise<void> {
    if (this.received >= n) return Promise.resolve();
    const s = signal();
    this.#want = { n, resolve: s.resolve };
    return s.promise;
  }
}

/**
 * Resolves once the server refuses the peer's bytes: writes, one at a time,
 * until one fails (the first may still reach the kernel before its reset).
 */
export async function refused(peer: Peer): Promise<void> {
  const failed = new Promise<void>((resolve) => {
    peer.sock.once("error", () => resolve());
    peer.sock.once("close", () => resolve());
  });
  let done = false;
  void failed.then(() => {
    done = true;
  });
  while (!done && !peer.sock.destroyed) {
    await new Promise<void>((resolve) => peer.sock.write("more\n", () => resolve()));
  }
  await failed;
}

/** Write `bytes` from the server in chunks of `size`, as separate writes. */
export function writeChunks(conn: ServerConn, bytes: Uint8Array, size: number): void {
  for (let at = 0; at < bytes.length; at += size) conn.write(bytes.slice(at, at + size));
}

/**
 * A TCP proxy in front of the server's `port` that can stop reading from the
 * server, so that the server's bytes back up in the kernel as they do before a
 * peer that does not read. (A paused node:tls socket is no such peer on Deno:
 * its TLS layer keeps reading.) TLS goes through it untouched.
 */
export class Holdback {
  readonly #server: net.Server;
  readonly #links: { up: net.Socket; down: net.Socket }[] = [];
  #held = false;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  /** Listen on a free port of 127.0.0.1, relaying each connection to `port`. */
  static async open(port: number): Promise<Holdback> {
    const server = net.createServer();
    const proxy = new Holdback(server);
    server.on("connection", (down: net.Socket) => proxy.#relay(down, port));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  #relay(down: net.Socket, port: number): void {
    const up = net.connect({ host: "127.0.0.1", port });
    const link = { up, down };
    this.#links.push(link);
    down.on("data", (b: Buffer) => up.write(b));
    up.on("data", (b: Buffer) => {
      if (!down.write(b)) up.pause();
    });
    down.on("drain", () => {
      if (!this.#held) up.resume();
    });
    for (const [a, b] of [
      [up, down],
      [down, up],
    ] as const) {
      a.on("end", () => b.end());
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
    if (this.#held) up.pause();
  }

  /** Stop reading from the server. */
  hold(): void {
    this.#held = true;
    for (const { up } of this.#links) up.pause();
  }

  /** Read from the server again. */
  release(): void {
    this.#held = false;
    for (const { up } of this.#links) up.resume();
  }

  close(): void {
    for (const { up, down } of this.#links.splice(0)) {
      up.destroy();
      down.destroy();
    }
    this.#server.close();
  }
}
