/**
 * A TCP proxy for fault injection, between one or more clients and a dflockd.
 * It runs inside the test process on `node:net`, so it works under Node, Bun
 * and Deno alike (the client under test keeps its own runtime's sockets).
 *
 * Per direction (`up`: client → server, `down`: server → client) it can delay
 * every chunk by an amount chosen per chunk, keeping the byte order: a chunk
 * is never delivered before the one in front of it. It can also be cut off:
 * nothing is forwarded either way, and nothing is closed, as in a network
 * partition; TCP would retransmit after the partition heals, so `restore()`
 * delivers what was held back, in order. It can also hang up at once, as a
 * server that goes away would. End of stream (FIN, or a reset) is
 * queued behind the data like a chunk, so a delayed or cut-off peer learns of
 * a close no sooner than of the bytes before it.
 */
import * as net from "node:net";

/** `up`: client → server; `down`: server → client. */
export type Direction = "up" | "down";

/**
 * Milliseconds to hold one chunk back; called once per chunk, as it arrives.
 * `conn` says which proxied connection (1, 2, ... in order of accepting).
 */
export type DelayFn = (chunk: Uint8Array, direction: Direction, conn: number) => number;

/** Something the proxy received (before any delay), for tests that watch the traffic. */
export interface ChunkEvent {
  /** Which proxied connection (1, 2, ... in order of accepting). */
  readonly conn: number;
  readonly direction: Direction;
  /** `undefined` for the end of the stream. */
  readonly chunk: Uint8Array | undefined;
  /** `performance.now()` when it reached the proxy. */
  readonly at: number;
  /** For an end of stream: the proxy closed that socket itself, passing on the other side's close. */
  readonly byProxy?: boolean;
}

/** A running proxy. */
export interface FaultProxy {
  readonly host: string;
  /** The port clients connect to. */
  readonly port: number;
  /** `[host, port]`, ready for a client's `servers` option. */
  readonly address: [string, number];
  /** Delay each chunk of `direction` from now on (`undefined`: forward at once). */
  setDelay(direction: Direction, delay: DelayFn | undefined): void;
  /** Stop forwarding both ways, keeping every socket open. */
  cut(): void;
  /** Forward again, delivering what was held back, in order. */
  restore(): void;
  /**
   * Hang up as a server that goes away would: every connection's held-back
   * chunks are dropped, each client gets an end of stream at once (what it
   * sends afterwards reaches nobody), and the server side is closed.
   */
  hangUp(): void;
  /** Whether it is cut off now. */
  readonly isCut: boolean;
  /** Point new connections at another server (existing ones keep theirs). */
  retarget(port: number, host?: string): void;
  /** Watch every chunk and end of stream as it reaches the proxy. */
  observe(listener: (e: ChunkEvent) => void): void;
  /** Open proxied connections. */
  connections(): number;
  /** Stop listening, drop every connection and every held chunk. */
  close(): Promise<void>;
}

type Item = { readonly chunk: Uint8Array | undefined; readonly due: number };

/** One direction of one connection: a queue of chunks with delivery times. */
class Pipe {
  readonly #queue: Item[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastDue = 0;
  #done = false;
  readonly #dst: net.Socket;
  readonly #blocked: () => boolean;
  readonly #onEnd: (dst: net.Socket) => void;

  constructor(dst: net.Socket, blocked: () => boolean, onEnd: (dst: net.Socket) => void) {
    this.#dst = dst;
    this.#blocked = blocked;
    this.#onEnd = onEnd;
  }

  /** Queue a chunk (`undefined`: end of stream) to leave after `delayMs`, behind everything queued. */
  push(chunk: Uint8Array | undefined, delayMs: number): void {
    if (this.#done) return;
    const due = Math.max(this.#lastDue, performance.now() + Math.max(0, delayMs));
    this.#lastDue = due;
    this.#queue.push({ chunk, due });
    this.pump();
  }

  /** Deliver what is due; arm a timer for the next item. */
  pump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (!this.#done && !this.#blocked()) {
      const head = this.#queue[0];
      if (head === undefined) return;
      const wait = head.due - performance.now();
      if (wait > 0) {
        this.#timer = setTimeout(() => this.pump(), Math.ceil(wait));
        return;
      }
      this.#queue.shift();
      if (head.chunk === undefined) {
        this.#done = true;
        this.#onEnd(this.#dst);
        this.#dst.destroy();
      } else if (!this.#dst.destroyed) {
        this.#dst.write(head.chunk);
      }
    }
  }

  /** Drop everything; deliver nothing more. */
  stop(): void {
    this.#done = true;
    this.#queue.length = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Start a proxy on 127.0.0.1 (a free port) in front of `target`. */
export async function startProxy(target: { host?: string; port: number }): Promise<FaultProxy> {
  let targetHost = target.host ?? "127.0.0.1";
  let targetPort = target.port;
  const delays: Record<Direction, DelayFn | undefined> = { up: undefined, down: undefined };
  const listeners: Array<(e: ChunkEvent) => void> = [];
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const pipes = new Set<Pipe>();
  const closedByProxy = new WeakSet<net.Socket>();
  const passClose = (dst: net.Socket): void => void closedByProxy.add(dst);
  let cutOff = false;
  let nextConn = 0;

  const emit = (e: ChunkEvent): void => {
    for (const l of listeners) l(e);
  };

  const server = net.createServer({ allowHalfOpen: true }, (client: net.Socket) => {
    const id = ++nextConn;
    clients.add(client);
    client.once("close", () => clients.delete(client));
    const upstream = net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true });
    const up = new Pipe(upstream, () => cutOff, passClose);
    const down = new Pipe(client, () => cutOff, passClose);
    pipes.add(up);
    pipes.add(down);
    const wire = (src: net.Socket, pipe: Pipe, direction: Direction): void => {
      sockets.add(src);
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        emit({ conn: id, direction, chunk: undefined, at: performance.now(), byProxy: closedByProxy.has(src) });
        pipe.push(undefined, delays[direction]?.(new Uint8Array(0), direction, id) ?? 0);
      };
      src.on("data", (b: Uint8Array) => {
        const chunk = new Uint8Array(b);
        emit({ conn: id, direction, chunk, at: performance.now() });
        pipe.push(chunk, delays[direction]?.(chunk, direction, id) ?? 0);
      });
      src.on("end", end);
      src.on("error", end);
      src.on("close", () => {
        end();
        sockets.delete(src);
      });
    };
    wire(client, up, "up");
    wire(upstream, down, "down");
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr === null || typeof addr !== "object") throw new Error("proxy: no listening address");
  const port = addr.port;

  return {
    host: "127.0.0.1",
    port,
    address: ["127.0.0.1", port],
    setDelay(direction: Direction, delay: DelayFn | undefined): void {
      delays[direction] = delay;
    },
    cut(): void {
      cutOff = true;
    },
    restore(): void {
      cutOff = false;
      for (const p of pipes) p.pump();
    },
    hangUp(): void {
      for (const p of pipes) p.stop();
      pipes.clear();
      for (const s of sockets) if (!clients.has(s)) s.destroy();
      for (const c of clients) c.end();
    },
    get isCut(): boolean {
      return cutOff;
    },
    retarget(newPort: number, newHost?: string): void {
      targetPort = newPort;
      if (newHost !== undefined) targetHost = newHost;
    },
    observe(listener: (e: ChunkEvent) => void): void {
      listeners.push(listener);
    },
    connections: () => clients.size,
    async close(): Promise<void> {
      for (const p of pipes) p.stop();
      pipes.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
