/**
 * Raw protocol sockets for the fault-injection suite: the contender (which
 * talks to dflockd directly, never through the proxy) and a `stats` probe.
 * Written on `node:net` so that they behave the same under every runtime;
 * every time is `performance.now()`, the clock the trial records on.
 */
import * as net from "node:net";

/** One reply line, with when its request left and when the reply arrived. */
export interface Reply {
  readonly line: string;
  readonly sentAt: number;
  readonly arrivedAt: number;
}

type Pending = { sentAt: number; resolve: (r: Reply) => void; reject: (e: Error) => void };

/** A plain connection speaking the three-line request / one-line reply protocol. */
export class RawConn {
  readonly #sock: net.Socket;
  readonly #pending: Pending[] = [];
  #buf = "";
  #closed = false;

  private constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.setNoDelay(true);
    sock.on("data", (b: Uint8Array) => this.#onData(b));
    const fail = (): void => this.#fail(new Error("connection closed"));
    sock.on("error", fail);
    sock.on("close", fail);
  }

  /** Connect to `host:port`, giving up after `timeoutMs`. */
  static open(host: string, port: number, timeoutMs = 2_000): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.removeAllListeners("error");
        resolve(new RawConn(sock));
      });
      sock.once("error", (err: Error) => {
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Send one request; resolves with its reply. Requests may be pipelined. */
  request(cmd: string, key: string, arg: string): Promise<Reply> {
    if (this.#closed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      const sentAt = performance.now();
      this.#pending.push({ sentAt, resolve, reject });
      this.#sock.write(`${cmd}\n${key}\n${arg}\n`);
    });
  }

  close(): void {
    this.#sock.destroy();
    this.#fail(new Error("closed by the test"));
  }

  #onData(b: Uint8Array): void {
    const arrivedAt = performance.now();
    this.#buf += Buffer.from(b).toString("utf8");
    for (let nl = this.#buf.indexOf("\n"); nl !== -1; nl = this.#buf.indexOf("\n")) {
      const line = this.#buf.slice(0, nl).replace(/\r$/, "");
      this.#buf = this.#buf.slice(nl + 1);
      const p = this.#pending.shift();
      // An unsolicited line (read-timeout `error`) with nothing pending is dropped.
      p?.resolve({ line, sentAt: p.sentAt, arrivedAt });
    }
  }

  #fail(err: Error): void {
    this.#closed = true;
    for (const p of this.#pending.splice(0)) p.reject(err);
  }
}

/** How the contender asks: `l key 0` every 2-5 ms, or one blocking `l key <timeout>`. */
export type ContenderMode = "poll" | "queue";

/** The request that got the contender the lock. */
export interface ContenderGrant {
  readonly token: string;
  /** When that request left: the earliest instant the server can have granted it. */
  readonly sentAt: number;
  /** When the grant reply arrived: the latest instant the server can have granted it. */
  readonly arrivedAt: number;
}

/** What a contender did. */
export interface ContenderResult {
  grant: ContenderGrant | undefined;
  /** Requests sent. */
  requests: number;
  /** Connections opened (more than one after a server restart). */
  connects: number;
  /** Replies other than a grant or `timeout`. */
  oddReplies: string[];
}

/** A flag a loop checks before every step. */
export interface StopFlag {
  stopped: boolean;
}

/** Options of {@link contend}. */
export interface ContendOptions {
  readonly host: string;
  readonly port: number;
  readonly key: string;
  readonly mode: ContenderMode;
  /** `performance.now()` after which it gives up. */
  readonly until: number;
  /** The contender's own lease once granted (long: it keeps the lock to the end of the trial). */
  readonly leaseS: number;
  readonly stop: StopFlag;
  /** Random numbers in [0, 1), for the 2-5 ms pauses. */
  readonly rng: () => number;
  /** Called with every connection it opens, so the trial can close it. */
  readonly onConn: (c: RawConn) => void;
}

/** Sleep `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

/**
 * Try to take `key` directly on the server until granted, stopped, or past
 * `until`, reconnecting whenever the connection drops (a server restart).
 * The connection that got the grant is left open: the contender keeps holding.
 */
export async function contend(o: ContendOptions): Promise<ContenderResult> {
  const res: ContenderResult = { grant: undefined, requests: 0, connects: 0, oddReplies: [] };
  const pause = (): Promise<void> => sleep(2 + o.rng() * 3);
  let conn: RawConn | undefined;
  while (!o.stop.stopped && performance.now() < o.until) {
    if (conn === undefined || conn.closed) {
      try {
        conn = await RawConn.open(o.host, o.port, 1_000);
        res.connects++;
        o.onConn(conn);
      } catch {
        conn = undefined;
        await pause();
        continue;
      }
    }
    const timeoutS = o.mode === "poll" ? 0 : Math.max(1, Math.ceil((o.until - performance.now()) / 1000));
    let reply: Reply;
    try {
      res.requests++;
      reply = await conn.request("l", o.key, `${timeoutS} ${o.leaseS}`);
    } catch {
      conn = undefined;
      await pause();
      continue;
    }
    if (reply.line.startsWith("ok ")) {
      res.grant = { token: reply.line.split(" ")[1] ?? "", sentAt: reply.sentAt, arrivedAt: reply.arrivedAt };
      return res;
    }
    if (reply.line !== "timeout" && res.oddReplies.length < 5) res.oddReplies.push(reply.line);
    if (o.mode === "poll" || reply.line !== "timeout") await pause();
  }
  return res;
}

/**
 * Watch the server's `stats` for `key` until stopped or `until`: every
 * request whose reply still lists a waiter on the key was processed before
 * the server granted it to the (only) waiter, the contender, so its send
 * time is a lower bound on the contender's grant. Returns those send times.
 */
export async function probeWaiting(o: Omit<ContendOptions, "mode" | "leaseS">): Promise<number[]> {
  const seen: number[] = [];
  let conn: RawConn | undefined;
  while (!o.stop.stopped && performance.now() < o.until) {
    try {
      if (conn === undefined || conn.closed) {
        conn = await RawConn.open(o.host, o.port, 1_000);
        o.onConn(conn);
      }
      const r = await conn.request("stats", "_", "");
      if (waitersOn(r.line, o.key) > 0) seen.push(r.sentAt);
    } catch {
      conn = undefined;
    }
    await sleep(2 + o.rng() * 3);
  }
  return seen;
}

/** Waiters on lock `key` in a `stats` reply line (0 if absent or unreadable). */
export function waitersOn(line: string, key: string): number {
  if (!line.startsWith("ok ")) return 0;
  try {
    const body = JSON.parse(line.slice(3)) as { locks?: Array<{ key?: string; waiters?: number }> | null };
    for (const l of body.locks ?? []) if (l.key === key) return typeof l.waiters === "number" ? l.waiters : 0;
  } catch {
    return 0;
  }
  return 0;
}
