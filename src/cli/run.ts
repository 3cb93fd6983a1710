/**
 * `dflockd-client lock` and `sem`: hold a lock (or a semaphore slot), or
 * several keys together, while a command runs. Acquire (`take.ts`); run the command with this process's standard
 * streams and what it holds in its environment; release when it has ended.
 * Signals to this process go to the command; a lost lock stops it. Without
 * a command, hold until a signal (`hold.ts`).
 *
 * @module
 */
import type { ClientOptions, DflockdClient } from "../client.ts";
import { LockLostError } from "../errors.ts";
import { DEFAULT_ACQUIRE_TIMEOUT_S } from "../options.ts";
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
import { type HeldEntry, type Holding, naming, type Taken, take } from "./take.ts";

/** What `lock` and `sem` were asked to do. */
export interface RunRequest {
  readonly kind: "lock" | "sem";
  /** The keys, in the order given; several are taken together, all or none (`client.holdAll()`). */
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
 * The child's view of what is held: key, server, fence and lease. For
 * several keys each variable is a list, one field per key in the order
 * taken, separated by single spaces (no key holds a space): `DFLOCKD_KEY="a b"`,
 * `DFLOCKD_SERVER="h:1 h:2"`, `DFLOCKD_LEASE="30 30"`. `DFLOCKD_FENCE` is
 * removed when no server sends a fence, so that one inherited from an outer
 * `dflockd-client` is not taken for ours; where some do and some do not, the
 * field of a key without one is `-`. Never the token, never the auth secret.
 *
 * @param entries What is held, in the order taken.
 * @returns The variables to set (a string) or remove (`undefined`).
 */
export function childEnv(entries: readonly HeldEntry[]): ChildEnv {
  const list = (field: (e: HeldEntry) => string): string => entries.map(field).join(" ");
  return {
    DFLOCKD_KEY: list((e) => e.key),
    DFLOCKD_SERVER: list((e) => e.server),
    DFLOCKD_FENCE: entries.every((e) => e.fence === undefined) ? undefined : list((e) => e.fence ?? "-"),
    DFLOCKD_LEASE: list((e) => String(e.leaseTtl)),
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

/**
 * Run `req.command` under the lock or slot, or under every one of several
 * keys (without a command, hold until a signal), and say how to exit.
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
  const what = naming(req);
  /** What was lost: the key alone when several are held. */
  const lostOne = (err: unknown): string =>
    err instanceof LockLostError && req.keys.length > 1 ? naming(req, err.key) : what;
  const say = (text: string): Promise<void> => host.stderr.write(`dflockd-client: ${text}\n`);

  const stopWaiting = new AbortController();
  let interrupted: ForwardedSignal | undefined;
  /** A second signal without a command (the first is releasing): stop at once. */
  let hurried: ForwardedSignal | undefined;
  let child: ChildProcessLike | undefined;
  /** The command has ended: what is left is the release. */
  let commandEnded = false;
  const undo = SIGNALS.map((sig) =>
    host.onSignal(sig, () => {
      if (child !== undefined && !commandEnded) {
        if (!(host.stdinIsTerminal && FROM_KEYBOARD.has(sig))) child.kill(sig);
      } else if (interrupted === undefined && child === undefined) {
        interrupted = sig;
        stopWaiting.abort();
      } else if (hurried === undefined) {
        // A second signal without a command, or one after the command ended: the release is not waited for.
        // Closing the connection frees the lock on the server (its default auto-release); what is pending ends now.
        hurried = sig;
        client.close();
      }
    }),
  );
  const busy = (key: string | undefined): number | Promise<number> => {
    if (req.quiet) return req.busyCode;
    const t = req.timeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_S * 1000;
    const within = t % 1000 === 0 ? `${t / 1000}s` : `${t}ms`;
    const n = req.keys.length;
    const text =
      key === undefined
        ? `${what} were not all free within ${within}; none is held`
        : `${naming(req, key)} on ${serverOf(client, req, key)} was not free within ${within}${n > 1 ? ` (one of ${n} keys; none is held)` : ""}`;
    return say(`busy: ${text}`).then(() => req.busyCode);
  };
  try {
    let taken: Taken;
    try {
      taken = await take(options, client, req, host, what, stopWaiting.signal);
    } catch (err) {
      if (!(err instanceof LockLostError)) throw err;
      await say(
        `${lostOne(err)} was lost as it was granted (${err.message})${req.command.length > 0 ? "; the command did not run" : ""}`,
      );
      return EXIT.LOST;
    }
    const held = taken.holding;
    if (held === undefined || interrupted !== undefined) {
      if (held !== undefined) await held.release().catch(() => {});
      if (interrupted !== undefined) return 128 + (host.signalNumber(interrupted) ?? 1);
      return await busy(taken.holding === undefined ? taken.key : undefined);
    }
    if (held.signal.aborted) {
      // Lost between the grant and now: the command must not start.
      const when = req.command.length > 0 ? "before the command started" : "as it was granted";
      await held.releaseRest();
      await say(
        `${lostOne(held.signal.reason)} was lost ${when} (${describe(held.signal.reason)})${req.command.length > 0 ? "; it did not run" : ""}`,
      );
      return EXIT.LOST;
    }
    if (req.command.length === 0) {
      const code = await holdUntilSignal(held, lostOne, stopWaiting.signal, host, () => hurried !== undefined);
      if (hurried === undefined) return code;
      await say(`${hurried} again: the release was not waited for; the server frees the lock as the connection closes`);
      return 128 + (host.signalNumber(hurried) ?? 1);
    }
    const [name, ...args] = req.command as [string, ...string[]];
    try {
      child = host.spawn(name, args, childEnv(held.entries));
      child.exited.then(
        () => {
          commandEnded = true;
        },
        () => {},
      );
      return await supervise(child, held, req, lostOne, say, host);
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

/** The server `key` goes to (sharding is by key: the same for a lock and a semaphore). */
function serverOf(client: DflockdClient, req: RunRequest, key: string): string {
  return (req.kind === "lock" ? client.lock(key) : client.semaphore(key, req.limit)).server;
}

/** Wait for the child; stop it if a key is lost; release after it ended. */
async function supervise(
  child: ChildProcessLike,
  held: Holding,
  req: RunRequest,
  lostOne: (err: unknown) => string,
  say: (text: string) => Promise<void>,
  host: CliHost,
): Promise<number> {
  /** The notice of a loss, being written: awaited before the exit, so it is never cut off. */
  let lost: Promise<void> | undefined;
  let kill: ReturnType<typeof setTimeout> | undefined;
  const onEnd = (): void => {
    const reason: unknown = held.signal.reason;
    if (!(reason instanceof LockLostError)) return;
    lost = say(`${lostOne(reason)} was lost (${reason.message}); stopping the command`).catch(() => {});
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
    // The other keys (several) stayed held while the command stopped; now they go.
    await held.releaseRest();
    await lost;
    return EXIT.LOST;
  }
  try {
    await held.release();
  } catch (err) {
    if (err instanceof LockLostError) {
      await say(`${lostOne(err)} was lost before the command ended (${err.message})`);
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
