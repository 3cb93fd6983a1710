/**
 * Taking what `lock` and `sem` hold: one key with its own `hold()`, several
 * with `client.holdAll()` (every key or none, in the library's canonical
 * order), within `--timeout` or `--wait`, with a status line on a terminal
 * while it waits. What it gives back, a {@link Holding}, is the same for one
 * key and several, so that what follows (the command, the held lines, a
 * loss, the release) does not tell them apart.
 *
 * @module
 */
import { type ClientLockOptions, type ClientOptions, DflockdClient } from "../client.ts";
import { AcquireTimeoutError, quote } from "../errors.ts";
import type { LockSpec } from "../multi.ts";
import { DEFAULT_ACQUIRE_TIMEOUT_S } from "../options.ts";
import { hostPort } from "../transport.ts";
import { MAX_OPTION_SECONDS } from "../validate.ts";
import { WIRE_WAIT, type WireWait } from "../wire-wait.ts";
import type { CliHost } from "./host.ts";
import type { RunRequest } from "./run.ts";
import { StatusLine } from "./status.ts";

/** One key held: what the command and the held line are told of it. */
export interface HeldEntry {
  readonly key: string;
  /** Its server, `host:port` (IPv6 in brackets). */
  readonly server: string;
  /** The server's fencing token, when it sends one. */
  readonly fence: string | undefined;
  /** The lease the server applied, in seconds. */
  readonly leaseTtl: number;
}

/** What `lock`/`sem` holds: one key or several, held together. */
export interface Holding {
  /** Every key held, in the order taken (for several keys the library's canonical order: by server, then key). */
  readonly entries: readonly HeldEntry[];
  /** Aborts when any key is lost (its `LockLostError` as the reason), or once released. */
  readonly signal: AbortSignal;
  /** Release every key (the last taken first); rejects with `LockLostError` if one was lost. */
  release(): Promise<void>;
  /** After a loss: release the keys still held (none for one key); never rejects. */
  releaseRest(): Promise<void>;
}

/** What taking came to: held, or not (busy, or stopped by a signal), naming the key not had when known. */
export type Taken = { readonly holding: Holding } | { readonly holding: undefined; readonly key: string | undefined };

/** A wait shorter than this shows no status line. */
const STATUS_DELAY_MS = 250;

/**
 * Take every key of `req`, with a status line on a terminal while it waits.
 *
 * @param options The client's options (for a status line's stats of the key's server).
 * @param client Where the keys live.
 * @param req What to take, and how long to wait.
 * @param host Where the status line goes.
 * @param what `lock "k"` or `locks "a", "b"`, for the status line.
 * @param signal Aborts on a signal to this process: stop waiting.
 * @returns The holding, or why there is none.
 * @throws LockError when a server cannot be reached or refuses; LockLostError for a loss as it was granted.
 */
export async function take(
  options: ClientOptions,
  client: DflockdClient,
  req: RunRequest,
  host: CliHost,
  what: string,
  signal: AbortSignal,
): Promise<Taken> {
  const servers = req.keys.map((k) => (req.kind === "lock" ? client.lock(k) : client.semaphore(k, req.limit)).server);
  let status: StatusLine | undefined;
  let delay: ReturnType<typeof setTimeout> | undefined;
  let statsClient: DflockdClient | undefined;
  if (!req.quiet && host.stderr.isTerminal && req.timeoutMs !== 0) {
    // One key: its server's stats tell how many are ahead, asked on a connection of its own.
    const server = req.keys.length === 1 ? client.servers.find(([h, p]) => hostPort(h, p) === servers[0]) : undefined;
    if (server !== undefined) statsClient = new DflockdClient({ ...options, servers: [server], maxIdlePerServer: 1 });
    const poll = (): Promise<number | undefined> =>
      statsClient === undefined ? Promise.resolve(undefined) : waitersAhead(statsClient, req);
    status = new StatusLine(host.stderr, { what, server: [...new Set(servers)].join(", ") }, poll);
    const s = status;
    delay = setTimeout(() => s.start(), STATUS_DELAY_MS);
  }
  const plan = waitPlan(req);
  // Our own deadline where the server's whole seconds cannot say it: it stops the wait as a signal does, with
  // an AcquireTimeoutError as the reason (holdAll() then names the key it was waiting for). It starts when the
  // first acquire request has gone out: `--timeout` is the server's time to grant, not the time to connect.
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  signal.addEventListener("abort", onSignal, { once: true });
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const wire: WireWait = {
    infinityS: plan.infinityS,
    onSent: () => {
      if (deadline !== undefined || plan.deadlineMs === undefined || stop.signal.aborted) return;
      deadline = setTimeout(() => stop.abort(new AcquireTimeoutError(req.keys[0] as string, 0)), plan.deadlineMs);
    },
  };
  try {
    return { holding: await hold(client, req, { signal: stop.signal, timeoutS: plan.timeoutS }, wire) };
  } catch (err) {
    if (err instanceof AcquireTimeoutError) return { holding: undefined, key: err.key };
    if (stop.signal.aborted) {
      return { holding: undefined, key: req.keys.length === 1 || signal.aborted ? req.keys[0] : undefined };
    }
    throw err;
  } finally {
    clearTimeout(deadline);
    signal.removeEventListener("abort", onSignal);
    clearTimeout(delay);
    statsClient?.close();
    await status?.stop();
  }
}

/** One key with its own hold(), several with holdAll(); either as a {@link Holding}. */
async function hold(
  client: DflockdClient,
  req: RunRequest,
  wait: { signal: AbortSignal; timeoutS: number },
  wire: WireWait,
): Promise<Holding> {
  // The library's internal option: the seconds sent for an unlimited wait, and when a request has gone out.
  const internal = { [WIRE_WAIT]: wire } as ClientLockOptions;
  // The server that granted it: the sharding's pick, or the cluster leader it was sent on to (leader.ts).
  const entry = (h: HeldEntry): HeldEntry => ({
    key: h.key,
    server: h.server,
    fence: h.fence,
    leaseTtl: h.leaseTtl,
  });
  if (req.keys.length === 1) {
    const key = req.keys[0] as string;
    const prim = req.kind === "lock" ? client.lock(key, internal) : client.semaphore(key, req.limit, internal);
    const held = await prim.hold(wait);
    return {
      entries: [entry(held)],
      signal: held.signal,
      release: () => held.release(),
      releaseRest: () => Promise.resolve(),
    };
  }
  const specs: LockSpec[] = req.keys.map((key) => (req.kind === "lock" ? key : { key, limit: req.limit }));
  const all = await client.holdAll(specs, { ...wait, ...internal });
  return {
    entries: all.locks.map(entry),
    signal: all.signal,
    release: () => all.release(),
    releaseRest: () => all.release().catch(() => {}),
  };
}

/**
 * How to wait: the seconds the server is asked for, and a deadline of our own
 * where those cannot say it (less than a second's precision). Longer than the
 * library's hour, the library is given `Infinity` and sends the whole seconds
 * (`infinityS`, rounded up) instead of 2^31 - 1, so that the server's own
 * timer ends the wait: dflockd before v1.15 does not notice a waiter that
 * went away while it is blocked, and would keep it queued. Several keys keep
 * the deadline too, as each key is sent the whole seconds, not what is left.
 *
 * @param req `--timeout` (milliseconds) or `--wait`; `keys` to tell one key from several.
 * @returns `timeoutS` for `hold()`, `infinityS` to send for it when it is `Infinity` and the wait is bounded, and `deadlineMs` when the wait must end sooner.
 */
export function waitPlan(req: Pick<RunRequest, "timeoutMs" | "wait"> & { keys?: readonly string[] }): {
  timeoutS: number;
  infinityS?: number;
  deadlineMs?: number;
} {
  if (req.wait) return { timeoutS: Number.POSITIVE_INFINITY };
  const ms = req.timeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_S * 1000;
  if (ms > MAX_OPTION_SECONDS * 1000) {
    const exact = ms % 1000 === 0 && (req.keys?.length ?? 1) === 1;
    const infinityS = Math.ceil(ms / 1000);
    return exact
      ? { timeoutS: Number.POSITIVE_INFINITY, infinityS }
      : { timeoutS: Number.POSITIVE_INFINITY, infinityS, deadlineMs: ms };
  }
  if (ms % 1000 === 0) return { timeoutS: ms / 1000 };
  return { timeoutS: Math.ceil(ms / 1000), deadlineMs: ms };
}

/** How many wait ahead of this process for the key, from its server's stats (this one among them). */
async function waitersAhead(statsClient: DflockdClient, req: RunRequest): Promise<number | undefined> {
  const [s] = await statsClient.stats();
  if (s === undefined || !s.ok) return undefined;
  const list = req.kind === "lock" ? s.stats.locks : s.stats.semaphores;
  const entry = list.find((e) => e.key === req.keys[0]);
  return entry === undefined ? undefined : Math.max(0, entry.waiters - 1);
}

/**
 * How messages name what is held: `lock "k"`, `semaphore "k"`, or for
 * several keys `locks "a", "b"` (in the order given).
 *
 * @param req The kind and the keys.
 * @param key One key of them, to name it alone.
 * @returns The words.
 */
export function naming(req: Pick<RunRequest, "kind" | "keys">, key?: string): string {
  const one = req.kind === "lock" ? "lock" : "semaphore";
  if (key !== undefined || req.keys.length === 1) return `${one} ${quote(key ?? (req.keys[0] as string), 1024)}`;
  return `${one}s ${req.keys.map((k) => quote(k, 1024)).join(", ")}`;
}
