/**
 * One client connection to the dflockd double: reads requests of three lines
 * under the server's read deadline, checks `auth`, parses arguments as the Go
 * server does, asks the lock table, and writes one reply line per request, in
 * order. A blocking `l`/`w` holds up the requests behind it, as on the server.
 */
import type { DoubleConfig } from "./config.ts";
import type { LineReader, LineResult } from "./lines.ts";
import type { Holder, LockTable, Owner, Waiter } from "./table.ts";
import { atoi, byteString, fields, trimSpace, utf8 } from "./wire.ts";

/** What a session needs from its socket. */
export interface SessionSocket {
  write(text: string): void;
  /** Close after pending writes. */
  end(): void;
}

/** What a session needs from its server. */
export interface SessionHost {
  readonly cfg: DoubleConfig;
  readonly table: LockTable;
  /** Open client connections, for `stats`. */
  connections(): number;
  /** True once a graceful stop has begun. */
  draining(): boolean;
}

/** The `s*` commands differ from their twins only in taking a limit (a lock's is 1). */
const CMDS: Record<string, { sem: boolean; op: "l" | "e" | "w" | "r" | "n" }> = {
  l: { sem: false, op: "l" },
  e: { sem: false, op: "e" },
  w: { sem: false, op: "w" },
  r: { sem: false, op: "r" },
  n: { sem: false, op: "n" },
  sl: { sem: true, op: "l" },
  se: { sem: true, op: "e" },
  sw: { sem: true, op: "w" },
  sr: { sem: true, op: "r" },
  sn: { sem: true, op: "n" },
};

/** The server's wait after refusing a client's `auth`, before it closes. */
export const AUTH_FAIL_CLOSE_MS = 100;

/** The longest request line the server takes, in bytes, without its `\n`. */
export const MAX_LINE_BYTES = 256;

/** The largest number of seconds later builds take (int64 nanoseconds). */
const MAX_SECONDS = 9_223_372_036;

/** A connection's request loop. */
export class Session implements Owner {
  readonly id: number;
  readonly enqueued: Map<string, Waiter> = new Map();
  readonly #host: SessionHost;
  readonly #sock: SessionSocket;
  readonly #lines: LineReader;

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
      if (req === "closed") return;
      if (req === "overlong" && !authed) return this.#refuseAuth();
      if (req === "timeout" || req === "overlong") {
        this.#sock.write("error\n");
        this.#sock.end();
        return;
      }
      const [cmdBytes, keyBytes, argBytes] = req;
      const cmd = utf8(cmdBytes);
      if (this.#host.draining() && cfg.draining) {
        this.#sock.write("error_draining\n");
        continue;
      }
      if (!authed) {
        const ok = cmd === "auth" && trimSpace(utf8(argBytes)) === cfg.authToken;
        if (!ok) return this.#refuseAuth();
        authed = true;
        this.#sock.write("ok\n");
        continue;
      }
      this.#sock.write(`${await this.#handle(cmd, keyBytes, utf8(argBytes))}\n`);
    }
  }

  async #refuseAuth(): Promise<void> {
    this.#sock.write("error_auth\n");
    await new Promise((r) => setTimeout(r, AUTH_FAIL_CLOSE_MS));
    this.#sock.end();
  }

  /**
   * Three lines, each under the read deadline, judged for length once their
   * `\n` has come: v1.10.0 counts trailing `\r`s and then drops them; later
   * builds delete every `\r` first.
   */
  async #readRequest(): Promise<
    [Uint8Array, Uint8Array, Uint8Array] | Exclude<LineResult, { line: Uint8Array }> | "overlong"
  > {
    const out: Uint8Array[] = [];
    const crAnywhere = this.#host.cfg.crAnywhere;
    while (out.length < 3) {
      const r = await this.#lines.next(this.#host.cfg.readTimeoutS * 1000);
      if (typeof r === "string") return r;
      let line = crAnywhere ? r.line.filter((b) => b !== 0x0d) : r.line;
      if (line.length > MAX_LINE_BYTES) return "overlong";
      while (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      out.push(line);
    }
    return out as [Uint8Array, Uint8Array, Uint8Array];
  }

  async #handle(cmd: string, keyBytes: Uint8Array, arg: string): Promise<string> {
    const table = this.#host.table;
    if (cmd === "stats") return `ok ${table.stats(this.#host.connections())}`;
    if (cmd === "ping" && this.#host.cfg.ping) return "ok";
    const spec = CMDS[cmd];
    if (spec === undefined) return "error";
    if (!validKey(keyBytes)) return "error";
    const key = byteString(keyBytes);
    const args = fields(arg);
    const { sem } = spec;
    switch (spec.op) {
      case "l": {
        const p = sem ? parseInts(args, 2, 3) : parseInts(args, 1, 2);
        if (p === undefined) return "error";
        const [timeout, limit, lease] = sem ? [p[0], p[1], p[2]] : [p[0], 1, p[1]];
        if (!nonNegative(timeout) || !positive(limit) || !optionalPositive(lease)) return "error";
        if (!this.#seconds(timeout) || !this.#seconds(lease)) return "error";
        return this.#lock(key, limit as number, this.#lease(lease), timeout as number);
      }
      case "e": {
        const p = sem ? parseInts(args, 1, 2) : parseInts(args, 0, 1);
        if (p === undefined) return "error";
        const [limit, lease] = sem ? [p[0], p[1]] : [1, p[0]];
        if (!positive(limit) || !optionalPositive(lease) || !this.#seconds(lease)) return "error";
        return this.#enqueue(key, limit as number, this.#lease(lease));
      }
      case "w": {
        const p = parseInts(args, 1, 1);
        if (p === undefined || !nonNegative(p[0]) || !this.#seconds(p[0])) return "error";
        return this.#wait(key, p[0] as number);
      }
      case "r": {
        if (args.length !== 1) return "error";
        return table.release(key, args[0] as string) ? "ok" : "error";
      }
      case "n": {
        if (args.length < 1 || args.length > 2) return "error";
        const lease = args.length === 2 ? atoi(args[1] as string) : undefined;
        if (args.length === 2 && (!positive(lease) || !this.#seconds(lease))) return "error";
        const h = table.renew(key, args[0] as string, this.#lease(lease));
        if (h === "expired") return this.#host.cfg.leaseExpired ? "error_lease_expired" : "error";
        if (h === undefined) return "error";
        return this.#host.cfg.fence ? `ok ${h.ttlS} ${h.fence}` : `ok ${h.ttlS}`;
      }
    }
  }

  /** Later builds refuse seconds that overflow int64 nanoseconds. */
  #seconds(n: number | undefined): boolean {
    return n === undefined || !this.#host.cfg.secondsCap || n <= MAX_SECONDS;
  }

  #lease(lease: number | undefined): number {
    return lease ?? this.#host.cfg.defaultLeaseTtlS;
  }

  async #lock(key: string, limit: number, ttlS: number, timeoutS: number): Promise<string> {
    const table = this.#host.table;
    const r = table.acquire(this, key, limit, ttlS, timeoutS > 0);
    if ("reply" in r) return r.reply;
    if ("busy" in r) return "timeout";
    if ("holder" in r) return `ok ${table.grantFields(r.holder)}`;
    const h = await this.#block(r.waiter, timeoutS);
    if (h === undefined) table.dequeue(r.waiter);
    return h === undefined ? "timeout" : `ok ${table.grantFields(h)}`;
  }

  #enqueue(key: string, limit: number, ttlS: number): string {
    if (this.enqueued.has(key)) return "error_already_enqueued";
    const table = this.#host.table;
    const r = table.acquire(this, key, limit, ttlS, true);
    if ("reply" in r) return r.reply;
    if ("busy" in r) return "error";
    if ("holder" in r) {
      this.enqueued.set(key, {
        owner: this,
        ttlS,
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

  async #wait(key: string, timeoutS: number): Promise<string> {
    const table = this.#host.table;
    const w = this.enqueued.get(key);
    if (w === undefined) return "error_not_enqueued";
    const ready = w.granted;
    if (ready !== undefined) {
      this.enqueued.delete(key);
      if (w.lapsed === "expired") return "error_lease_expired";
      if (w.lapsed === "stale") return `ok ${table.grantFields(ready)}`;
      if (ready.expiresAt <= table.now()) {
        // Ran out before the sweep came by: every server says so, and drops it.
        table.release(key, ready.token);
        return "error_lease_expired";
      }
      // Collecting a grant restarts its lease, with the TTL `e` asked for.
      ready.expiresAt = table.now() + w.ttlS * 1000;
      return `ok ${table.grantFields(ready)}`;
    }
    const h = w.queued && timeoutS > 0 ? await this.#block(w, timeoutS) : undefined;
    this.enqueued.delete(key);
    if (h === undefined) {
      // A wait that times out gives up its place in the queue.
      table.dequeue(w);
      return "timeout";
    }
    return `ok ${table.grantFields(h)}`;
  }

  /** Park until granted or `timeoutS` passes (then `undefined`). */
  #block(w: Waiter, timeoutS: number): Promise<Holder | undefined> {
    return new Promise((resolve) => {
      // Beyond what a timer can hold the wait is as good as forever.
      const ms = timeoutS * 1000;
      const timer =
        ms <= MAX_TIMER_MS
          ? setTimeout(() => {
              w.wake = undefined;
              resolve(undefined);
            }, ms)
          : undefined;
      w.wake = (h) => {
        if (timer !== undefined) clearTimeout(timer);
        w.wake = undefined;
        resolve(h);
      };
    });
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

function validKey(key: Uint8Array): boolean {
  if (key.length === 0 || key.length > MAX_LINE_BYTES) return false;
  for (const b of key) if (b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a) return false;
  return true;
}

/** Between `min` and `max` integers, each as Go's strconv.Atoi takes them. */
function parseInts(args: string[], min: number, max: number): (number | undefined)[] | undefined {
  if (args.length < min || args.length > max) return undefined;
  const out: (number | undefined)[] = [];
  for (const a of args) {
    const n = atoi(a);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

function nonNegative(n: number | undefined): boolean {
  return n !== undefined && n >= 0;
}
function positive(n: number | undefined): boolean {
  return n !== undefined && n > 0;
}
function optionalPositive(n: number | undefined): boolean {
  return n === undefined || n > 0;
}
