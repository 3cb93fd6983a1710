/**
 * `dflockd-client lock` and `sem`: hold a lock (or a semaphore slot) while a
 * command runs. Acquire; run the command with this process's standard
 * streams and what it holds in its environment; release when it has ended.
 * Signals to this process go to the command; a lost lock stops it. Without
 * a command, hold until a signal (`hold.ts`).
 *
 * @module
 */
import { type ClientOptions, DflockdClient } from "../client.ts";
import { AcquireTimeoutError, LockLostError, quote } from "../errors.ts";
import type { HeldLock } from "../held.ts";
import { DEFAULT_ACQUIRE_TIMEOUT_S } from "../options.ts";
import type { DistributedPrimitive } from "../primitive.ts";
import { hostPort } from "../transport.ts";
import { MAX_OPTION_SECONDS } from "../validate.ts";
import { UsageError } from "./args.ts";
import { EXIT } from "./exit.ts";
import { holdUntilSignal } from "./hold.ts";
import {
  type ChildEnv,
  type ChildExit,
  type ChildProcessLike,
  type CliHost,
  type ForwardedSignal,
  SpawnError,
} from "./host.ts";
import { StatusLine } from "./status.ts";

/** What `lock` and `sem` were asked to do. */
export interface RunRequest {
  readonly kind: "lock" | "sem";
  /** The keys; one, until several are wired (see {@link runUnderLock}). */
  readonly keys: readonly string[];
  readonly limit: number;
  /** The command; empty: hold until a signal. */
  readonly command: readonly string[];
  /** `--timeout` in milliseconds; `undefined`: the default (10 s). */
  readonly timeoutMs: number | undefined;
  /** `--wait`: without limit. */
  readonly wait: boolean;
  readonly graceS: number;
  readonly quiet: boolean;
  /** The status when busy (`--conflict-exit-code`). */
  readonly busyCode: number;
}

/**
 * The child's view of what is held: key, server, fence and lease. The fence
 * is removed when the server sends none, so that one inherited from an
 * outer `dflockd-client` is not taken for this lock's. Never the token, never
 * the auth secret.
 *
 * @param held The holding.
 * @param server Its server, `host:port` (IPv6 in brackets).
 * @returns The variables to set (a string) or remove (`undefined`).
 */
export function childEnv(held: Pick<HeldLock, "key" | "fence" | "leaseTtl">, server: string): ChildEnv {
  return {
    DFLOCKD_KEY: held.key,
    DFLOCKD_SERVER: server,
    DFLOCKD_FENCE: held.fence,
    DFLOCKD_LEASE: String(held.leaseTtl),
  };
}

/** The signals passed on to the command (and that stop a wait). */
const SIGNALS: readonly ForwardedSignal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];
/**
 * Signals a terminal sends to its whole foreground process group, the
 * command included: passed on only when this process has no terminal, so a
 * Ctrl-C reaches the command once.
 */
const FROM_KEYBOARD: ReadonlySet<ForwardedSignal> = new Set(["SIGINT", "SIGQUIT"]);
/** A wait shorter than this shows no status line. */
const STATUS_DELAY_MS = 250;

/**
 * Run `req.command` under the lock or slot (without one, hold until a signal), and say how to exit.
 *
 * @param req What to hold and what to run.
 * @param options The client's options (for a status line's stats of the key's server).
 * @param client Where the lock lives.
 * @param host The runtime.
 * @returns The exit status: the command's, or one of {@link EXIT}.
 * @throws LockError when a server cannot be reached or refuses (the caller maps it to a status).
 */
export async function runUnderLock(
  req: RunRequest,
  options: ClientOptions,
  client: DflockdClient,
  host: CliHost,
): Promise<number> {
  // The one place several keys will be taken, all or none (client.holdAll()).
  if (req.keys.length > 1) {
    throw new UsageError(`${req.kind}: several keys (--key given more than once) are not supported yet; give one`);
  }
  const key = req.keys[0] as string;
  const what = `${req.kind === "lock" ? "lock" : "semaphore"} ${quote(key, 1024)}`;
  const prim: DistributedPrimitive = req.kind === "lock" ? client.lock(key) : client.semaphore(key, req.limit);
  const say = (text: string): Promise<void> => host.stderr.write(`dflockd-client: ${text}\n`);

  const stopWaiting = new AbortController();
  let interrupted: ForwardedSignal | undefined;
  let child: ChildProcessLike | undefined;
  const undo = SIGNALS.map((sig) =>
    host.onSignal(sig, () => {
      if (child !== undefined) {
        if (!(host.stdinIsTerminal && FROM_KEYBOARD.has(sig))) child.kill(sig);
      } else if (interrupted === undefined) {
        interrupted = sig;
        stopWaiting.abort();
      }
    }),
  );
  const busy = (): number | Promise<number> => {
    if (req.quiet) return req.busyCode;
    const t = req.timeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_S * 1000;
    return say(
      `busy: ${what} on ${prim.server} was not free within ${t % 1000 === 0 ? `${t / 1000}s` : `${t}ms`}`,
    ).then(() => req.busyCode);
  };
  try {
    let held: HeldLock | undefined;
    try {
      held = await acquire(options, client, prim, req, host, what, stopWaiting.signal);
    } catch (err) {
      if (!(err instanceof LockLostError)) throw err;
      await say(
        `${what} was lost as it was granted (${err.message})${req.command.length > 0 ? "; the command did not run" : ""}`,
      );
      return EXIT.LOST;
    }
    if (held === undefined || interrupted !== undefined) {
      if (held !== undefined) await held.release().catch(() => {});
      if (interrupted !== undefined) return 128 + (host.signalNumber(interrupted) ?? 1);
      return await busy();
    }
    if (held.signal.aborted) {
      // Lost between the grant and now: the command must not start.
      const when = req.command.length > 0 ? "before the command started" : "as it was granted";
      await say(
        `${what} was lost ${when} (${describe(held.signal.reason)})${req.command.length > 0 ? "; it did not run" : ""}`,
      );
      return EXIT.LOST;
    }
    if (req.command.length === 0) return await holdUntilSignal(held, prim.server, what, stopWaiting.signal, host);
    const [name, ...args] = req.command as [string, ...string[]];
    try {
      child = host.spawn(name, args, childEnv(held, prim.server));
      return await supervise(child, held, req, what, say, host);
    } catch (err) {
      // A command that cannot start fails here, at once or (Node) from `exited`.
      if (!(err instanceof SpawnError)) throw err;
      await held.release().catch(() => {});
      await say(`${name}: ${err.message}`);
      return err.reason === "not-found" ? EXIT.NOT_FOUND : EXIT.NOT_RUNNABLE;
    }
  } finally {
    for (const off of undo) off();
  }
}

/** Acquire, with a status line on a terminal while it waits; `undefined` when not free in time or stopped. */
async function acquire(
  options: ClientOptions,
  client: DflockdClient,
  prim: DistributedPrimitive,
  req: RunRequest,
  host: CliHost,
  what: string,
  signal: AbortSignal,
): Promise<HeldLock | undefined> {
  let status: StatusLine | undefined;
  let delay: ReturnType<typeof setTimeout> | undefined;
  let statsClient: DflockdClient | undefined;
  if (!req.quiet && host.stderr.isTerminal && req.timeoutMs !== 0) {
    // Stats of the key's server only, on a connection of its own.
    const server = client.servers.find(([h, p]) => hostPort(h, p) === prim.server);
    if (server !== undefined) statsClient = new DflockdClient({ ...options, servers: [server], maxIdlePerServer: 1 });
    const poll = (): Promise<number | undefined> =>
      statsClient === undefined ? Promise.resolve(undefined) : waitersAhead(statsClient, req);
    status = new StatusLine(host.stderr, { what, server: prim.server }, poll);
    const s = status;
    delay = setTimeout(() => s.start(), STATUS_DELAY_MS);
  }
  const plan = waitPlan(req);
  // Our own deadline where the server's whole seconds cannot say it: it stops the wait as a signal does.
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  signal.addEventListener("abort", onSignal, { once: true });
  const deadline = plan.deadlineMs === undefined ? undefined : setTimeout(onSignal, plan.deadlineMs);
  try {
    return await prim.hold({ signal: stop.signal, timeoutS: plan.timeoutS });
  } catch (err) {
    if (stop.signal.aborted || err instanceof AcquireTimeoutError) return undefined;
    throw err;
  } finally {
    clearTimeout(deadline);
    signal.removeEventListener("abort", onSignal);
    clearTimeout(delay);
    statsClient?.close();
    await status?.stop();
  }
}

/**
 * How to wait: the seconds the server is asked for, and a deadline of our own
 * where those cannot say it (less than a second's precision, or longer than
 * the library's hour: then the server waits without limit until it).
 *
 * @param req `--timeout` (milliseconds) or `--wait`.
 * @returns `timeoutS` for `hold()`, and `deadlineMs` when the wait must end sooner.
 */
export function waitPlan(req: Pick<RunRequest, "timeoutMs" | "wait">): { timeoutS: number; deadlineMs?: number } {
  if (req.wait) return { timeoutS: Number.POSITIVE_INFINITY };
  const ms = req.timeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_S * 1000;
  if (ms > MAX_OPTION_SECONDS * 1000) return { timeoutS: Number.POSITIVE_INFINITY, deadlineMs: ms };
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

/** Wait for the child; stop it if the lock is lost; release after it ended. */
async function supervise(
  child: ChildProcessLike,
  held: HeldLock,
  req: RunRequest,
  what: string,
  say: (text: string) => Promise<void>,
  host: CliHost,
): Promise<number> {
  /** The notice of a loss, being written: awaited before the exit, so it is never cut off. */
  let lost: Promise<void> | undefined;
  let kill: ReturnType<typeof setTimeout> | undefined;
  const onEnd = (): void => {
    if (!(held.signal.reason instanceof LockLostError)) return;
    lost = say(`${what} was lost (${held.signal.reason.message}); stopping the command`).catch(() => {});
    if (req.graceS === 0) child.kill("SIGKILL");
    else {
      child.kill("SIGTERM");
      kill = setTimeout(() => child.kill("SIGKILL"), req.graceS * 1000);
    }
  };
  // Nothing ran between the check before the start and here (spawning is synchronous): no loss is missed.
  held.signal.addEventListener("abort", onEnd, { once: true });
  let ended: ChildExit;
  try {
    ended = await child.exited;
  } finally {
    clearTimeout(kill);
    held.signal.removeEventListener("abort", onEnd);
  }
  if (lost !== undefined) {
    await lost;
    return EXIT.LOST;
  }
  try {
    await held.release();
  } catch (err) {
    if (err instanceof LockLostError) {
      await say(`${what} was lost before the command ended (${err.message})`);
      return EXIT.LOST;
    }
    // Held to the end; only the release failed, and the server frees the lock when the connection closes.
    await say(
      `the command ended, but the release failed (${describe(err)}); the lock is freed when the connection closes`,
    );
  }
  return exitStatus(ended, host);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The command's exit code, or 128 + the number of the signal that ended it. */
export function exitStatus(ended: ChildExit, host: Pick<CliHost, "signalNumber">): number {
  if (ended.signal !== null) {
    const n = host.signalNumber(ended.signal);
    if (n !== undefined) return 128 + n;
  }
  return ended.code ?? 1;
}
