/**
 * One client connection to the dflockd-compatible server: reads requests of
 * three lines under the read deadline, checks `auth`, parses arguments as
 * dflockd v1.10.0 does (Go's integers, and seconds turned into int64
 * nanoseconds that may wrap), asks the lock table, and writes one reply line
 * per request, in order. A blocking `l`/`w` holds up the requests behind it,
 * as on the server; a shutdown ends it with `error`.
 *
 * @module
 */
import {
  CMDS,
  MAX_AUTH_LINE_BYTES,
  MAX_LINE_BYTES,
  MAX_SECONDS,
  nanos,
  parseInts,
  validKey,
  wholeSeconds,
} from "./args.ts";
import type { ServerConfig } from "./config.ts";
import { parseAtoi as atoi } from "./goflag.ts";
import { delayOf, type LineReader, type LineResult, MAX_TIMER_MS } from "./lines.ts";
import {
  type Holder,
  type Lease,
  type Limit,
  LOCK_LIMIT,
  type LockTable,
  type Owner,
  slotOf,
  type Waiter,
} from "./table.ts";
import { byteString, fields, trimSpace, utf8 } from "./wire.ts";

/** What a session needs from its connection (the server closes it once the session ends). */
export interface SessionSocket {
  write(text: string): void;
  /** Bytes written and not yet taken by the OS. */
  readonly queued: number;
  /** Resolves once everything written has been taken by the OS, or the connection is gone. */
  flushed(): Promise<void>;
}

/** Replies queued past this many bytes make the session wait for its peer to read, as a blocked write does. */
const WRITE_HIGH_WATER = 64 * 1024;

/** What a session needs from its server. */
export interface SessionHost {
  readonly cfg: ServerConfig;
  readonly table: LockTable;
  /** Open client connections, for `stats`. */
  connections(): number;
  /** True once a graceful shutdown has begun. */
  shuttingDown(): boolean;
  /** Call `cancel` when a shutdown begins; returns what undoes that. */
  onShutdown(cancel: () => void): () => void;
}

/** The server's wait after refusing a client's `auth`, before it closes. */
export const AUTH_FAIL_CLOSE_MS = 100;

/** What waiting in a queue ended with. */
type Parked = Holder | "timeout" | "shutdown" | "gone";

/** A connection's request loop. */
export class Session implements Owner {
  readonly id: number;
  readonly enqueued: Map<string, Waiter> = new Map();
  readonly #host: SessionHost;
  readonly #sock: SessionSocket;
  readonly #lines: LineReader;
  /** Ends the wait after a refused auth early, when the server stops. */
  #abortWait: (() => void) | undefined;
  #aborted = false;
  /** The peer has closed (or shut its side); with `dropOnPeerClose`, what ends a blocked wait then. */
  #peerGone = false;
  #onPeerGone: (() => void) | undefined;

  constructor(id: number, host: SessionHost, sock: SessionSocket, lines: LineReader) {
    this.id = id;
    this.#host = host;
    this.#sock = sock;
    this.#lines = lines;
  }

  /** Serve requests until the peer goes or a rule closes the connection. */
  async run(): Promise<void> {
    const cfg = this.#host.cfg;
    let authed = cfg.authToken === undefined;
    for (;;) {
      const req = await this.#readRequest();
      if (typeof req !== "string" && cfg.draining && this.#host.shuttingDown()) {
        this.#sock.write("error_draining\n");
        return;
      }
      // Before auth, anything but the right token (silence, a close, a long line) is refused as auth.
      if (!authed && (typeof req === "string" || utf8(req[0]) !== "auth" || trimSpace(utf8(req[2])) !== cfg.authToken))
        return this.#refuseAuth();
      if (req === "closed") return;
      if (req === "timeout" || req === "overlong") {
        this.#sock.write("error\n");
        return;
      }
      const [cmdBytes, keyBytes, argBytes] = req;
      const cmd = utf8(cmdBytes);
      if (!authed) {
        authed = true;
        if (!(await this.#send("ok\n"))) return;
        continue;
      }
      const reply = await this.#handle(cmd, keyBytes, utf8(argBytes));
      if (reply === undefined || !(await this.#send(`${reply}\n`))) return;
    }
  }

  /**
   * The peer closed the connection or shut its side of it. v1.15+ (`dropOnPeerClose`) watches for that while a
   * request blocks and gives up the wait at once; v1.10.0 reads nothing then, and the wait runs its course.
   */
  peerClosed(): void {
    this.#peerGone = true;
    if (this.#host.cfg.dropOnPeerClose) this.#onPeerGone?.();
  }

  /** The server is stopping (not draining): end any wait of the session's own now. */
  abort(): void {
    this.#aborted = true;
    this.#abortWait?.();
  }

  async #refuseAuth(): Promise<void> {
    this.#sock.write("error_auth\n");
    if (this.#aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, AUTH_FAIL_CLOSE_MS);
      this.#abortWait = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#abortWait = undefined;
  }

  /**
   * Three lines, each under the read deadline, judged for length once their
   * `\n` has come: v1.10.0 counts trailing `\r`s and then drops them; later
   * builds delete every `\r` first. Each line may have 256 bytes, but the
   * argument of `auth`, which may have 64 KiB from v1.15 (`longAuth`: the
   * reader then keeps lines that long, and the rest are judged here).
   */
  async #readRequest(): Promise<[Uint8Array, Uint8Array, Uint8Array] | Exclude<LineResult, { line: Uint8Array }>> {
    const out: Uint8Array[] = [];
    while (out.length < 3) {
      const r = await this.#lines.next(this.#host.cfg.readTimeoutS * 1000);
      if (typeof r === "string") return r;
      const auth = out.length === 2 && utf8(out[0] as Uint8Array) === "auth";
      if (r.line.length > (auth ? MAX_AUTH_LINE_BYTES : MAX_LINE_BYTES)) return "overlong";
      let line = r.line;
      while (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      out.push(line);
    }
    return out as [Uint8Array, Uint8Array, Uint8Array];
  }

  /**
   * Write `text`; when replies pile up unread, wait for the peer to take them,
   * at most `writeTimeoutS` (0: for ever). False when that ran out: dflockd
   * then drops the connection.
   */
  async #send(text: string): Promise<boolean> {
    this.#sock.write(text);
    if (this.#sock.queued <= WRITE_HIGH_WATER) return true;
    const limitS = this.#host.cfg.writeTimeoutS;
    if (limitS <= 0) {
      await this.#sock.flushed();
      return true;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), delayOf(limitS));
    });
    const ok = await Promise.race([this.#sock.flushed().then(() => true), late]);
    clearTimeout(timer);
    return ok;
  }

  /** The reply line; undefined when the connection is to close with none. */
  async #handle(cmd: string, keyBytes: Uint8Array, arg: string): Promise<string | undefined> {
    const table = this.#host.table;
    if (cmd === "stats") return `ok ${table.stats(this.#host.connections())}`;
    if (cmd === "ping" && this.#host.cfg.ping) return "ok";
    const spec = CMDS[cmd];
    if (spec === undefined) return "error";
    if (!validKey(keyBytes)) return "error";
    const { sem } = spec;
    const key = slotOf(byteString(keyBytes), sem, this.#host.cfg.namespaces);
    const args = fields(arg);
    switch (spec.op) {
      case "l": {
        const p = sem ? parseInts(args, 2, 3) : parseInts(args, 1, 2);
        if (p === undefined) return "error";
        const [timeout, limit, lease] = sem ? [p[0], this.#limit(p[1]), p[2]] : [p[0], LOCK_LIMIT, p[1]];
        if (timeout === undefined || timeout < 0n || limit === undefined || !this.#seconds(timeout)) return "error";
        const l = this.#lease(lease, true);
        if (l === undefined || l.ms <= 0) return "error";
        return this.#lock(key, limit, l, Number(nanos(timeout)) / 1e6);
      }
      case "e": {
        let limit: Limit | undefined = LOCK_LIMIT;
        let lease: Lease | undefined;
        if (sem) {
          const p = parseInts(args, 1, 2);
          limit = this.#limit(p?.[0]);
          lease = this.#lease(p?.[1], false);
          // `se` checks the lease after the seconds became nanoseconds; `e` checks the seconds.
          if (p === undefined || limit === undefined || lease === undefined || lease.ms <= 0) return "error";
        } else {
          const text = trimSpace(arg);
          const n = text === "" ? undefined : atoi(text);
          if (text !== "" && (n === undefined || n <= 0n)) return "error";
          lease = this.#lease(n, false);
          if (lease === undefined) return "error";
        }
        return this.#enqueue(key, limit, lease);
      }
      case "w": {
        const text = trimSpace(arg);
        const n = text === "" ? undefined : atoi(text);
        if (n === undefined || n < 0n || !this.#seconds(n)) return "error";
        return this.#wait(key, Number(nanos(n)) / 1e6);
      }
      case "r": {
        // The token is the whole argument, trimmed: a second word makes it a token nobody holds.
        const token = trimSpace(arg);
        if (token === "") return "error";
        return table.release(key, token) ? "ok" : "error";
      }
      case "n": {
        if (args.length < 1 || args.length > 2) return "error";
        const given = args.length === 2 ? atoi(args[1] as string) : undefined;
        if (args.length === 2 && given === undefined) return "error";
        const lease = this.#lease(given, true);
        if (lease === undefined || lease.ms <= 0) return "error";
        const h = table.renew(key, args[0] as string, lease.ms);
        if (h === "expired") return this.#host.cfg.leaseExpired ? "error_lease_expired" : "error";
        if (h === undefined) return "error";
        // The seconds renewed, with no default in place of 0 (a grant's reply has one).
        const left = Math.max(0, lease.whole);
        return this.#host.cfg.fence ? `ok ${left} ${h.fence}` : `ok ${left}`;
      }
    }
  }

  /** Later builds refuse seconds that overflow int64 nanoseconds; v1.10.0 lets them wrap. */
  #seconds(n: bigint): boolean {
    return !this.#host.cfg.secondsCap || n <= MAX_SECONDS;
  }

  /** A semaphore's limit: more than 0. */
  #limit(n: bigint | undefined): Limit | undefined {
    return n === undefined || n <= 0n ? undefined : { n: Number(n), text: n.toString() };
  }

  /**
   * A lease from its seconds (the default when undefined); undefined when a
   * later build's cap refuses it. `viaFloat`: the request writes whole seconds
   * as `l` does (see {@link wholeSeconds}).
   */
  #lease(seconds: bigint | undefined, viaFloat: boolean): (Lease & { readonly whole: number }) | undefined {
    if (seconds !== undefined && !this.#seconds(seconds)) return undefined;
    const d = this.#host.cfg.defaultLeaseTtlS;
    const ns = seconds === undefined ? BigInt(Math.round(d * 1e9)) : nanos(seconds);
    const whole = wholeSeconds(ns, viaFloat);
    // A grant reply that would name 0 seconds names the default instead, as dflockd's does.
    return { ms: Number(ns) / 1e6, whole, replyS: whole === 0 ? Math.trunc(d) : whole };
  }

  async #lock(key: string, limit: Limit, lease: Lease, timeoutMs: number): Promise<string | undefined> {
    const table = this.#host.table;
    // Once a shutdown has begun, a request that must wait is cut at once, even a try (`l` with timeout 0).
    const r = table.acquire(this, key, limit, lease, timeoutMs > 0 || this.#host.shuttingDown());
    if ("reply" in r) return r.reply;
    if ("busy" in r) return "timeout";
    if ("holder" in r) return `ok ${table.grantFields(r.holder)}`;
    const h = await this.#park(r.waiter, timeoutMs);
    if (typeof h !== "string") {
      table.touch(key);
      return `ok ${table.grantFields(h)}`;
    }
    table.dequeue(r.waiter);
    return this.#cut(h);
  }

  /**
   * The answer to a blocked request cut short: `timeout`; none, and a close, when the peer went away; when a
   * shutdown cut it, `error`, or (the fence build) none, and a close.
   */
  #cut(how: Exclude<Parked, Holder>): string | undefined {
    if (how === "timeout") return "timeout";
    return how === "gone" || this.#host.cfg.shutdownCloses ? undefined : "error";
  }

  #enqueue(key: string, limit: Limit, lease: Lease): string {
    if (this.enqueued.has(key)) return "error_already_enqueued";
    const table = this.#host.table;
    const r = table.acquire(this, key, limit, lease, true);
    if ("reply" in r) return r.reply;
    if ("busy" in r) return "error";
    if ("holder" in r) {
      this.enqueued.set(key, {
        owner: this,
        lease,
        entry: undefined,
        wake: undefined,
        granted: r.holder,
        queued: false,
      });
      return `acquired ${table.grantFields(r.holder)}`;
    }
    this.enqueued.set(key, r.waiter);
    return "queued";
  }

  async #wait(key: string, timeoutMs: number): Promise<string | undefined> {
    const table = this.#host.table;
    const w = this.enqueued.get(key);
    if (w === undefined) return "error_not_enqueued";
    const ready = w.granted;
    if (ready !== undefined) {
      this.enqueued.delete(key);
      if (w.lapsed === "expired") return "error_lease_expired";
      table.touch(key);
      if (w.lapsed === "stale") return `ok ${table.grantFields(ready)}`;
      if (w.entry === undefined && ready.expiresAt <= table.now()) {
        // `e` took the key at once and the lease ran out before the sweep came by: it is dropped. (A grant
        // that came from the queue is collected with its lease restarted, as long as it was not swept.)
        table.release(key, ready.token);
        return "error_lease_expired";
      }
      // Collecting a grant restarts its lease, with the TTL `e` asked for.
      ready.expiresAt = table.now() + w.lease.ms;
      return `ok ${table.grantFields(ready)}`;
    }
    const h = w.queued ? await this.#park(w, timeoutMs) : "timeout";
    this.enqueued.delete(key);
    if (typeof h === "string") {
      // A wait that times out (or is cut by a shutdown) gives up its place in the queue.
      table.dequeue(w);
      return this.#cut(h);
    }
    table.touch(key);
    return `ok ${table.grantFields(h)}`;
  }

  /**
   * Park until granted, `timeoutMs` passes, a shutdown begins (at once if one has), or (`dropOnPeerClose`) the
   * peer goes away (at once if it has).
   */
  #park(w: Waiter, timeoutMs: number): Promise<Parked> {
    if (this.#host.shuttingDown()) return Promise.resolve("shutdown");
    if (timeoutMs <= 0) return Promise.resolve("timeout");
    if (this.#peerGone && this.#host.cfg.dropOnPeerClose) return Promise.resolve("gone");
    return new Promise((resolve) => {
      // Beyond what a timer can hold the wait is as good as forever.
      const timer = timeoutMs <= MAX_TIMER_MS ? setTimeout(() => done("timeout"), timeoutMs) : undefined;
      const unhook = this.#host.onShutdown(() => done("shutdown"));
      const done = (how: Parked): void => {
        if (timer !== undefined) clearTimeout(timer);
        unhook();
        w.wake = undefined;
        this.#onPeerGone = undefined;
        resolve(how);
      };
      w.wake = done;
      this.#onPeerGone = () => done("gone");
    });
  }
}
