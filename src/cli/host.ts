/**
 * What the command line needs from its runtime: arguments, environment,
 * files, output, signals, child processes and (for `serve`) a listener. Each
 * runtime's adapter (`adapters/<runtime>/cli.ts`) provides one with that
 * runtime's own APIs; nothing here touches a runtime.
 *
 * @module
 */
import type { Listen } from "../server/listen.ts";

/** The signals the command line handles and forwards to its child. */
export type ForwardedSignal = "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGQUIT";

/** A signal the command line sends to its child. */
export type ChildSignal = ForwardedSignal | "SIGKILL";

/** How a child process ended: its exit code, or the signal that ended it. */
export interface ChildExit {
  /** The exit code, when the child exited by itself. */
  readonly code: number | null;
  /** The signal's name (`"SIGTERM"`), when a signal ended it. */
  readonly signal: string | null;
}

/** A running child process with inherited standard streams. */
export interface ChildProcessLike {
  /** Resolves once, when the child has ended. */
  readonly exited: Promise<ChildExit>;
  /** Send `signal`; does nothing once the child has ended. */
  kill(signal: ChildSignal): void;
}

/** Why a command could not be started. */
export class SpawnError extends Error {
  /** `"not-found"` (no such command) or `"not-runnable"` (found, but not executable or not permitted). */
  readonly reason: "not-found" | "not-runnable";

  /**
   * @param message What the runtime said.
   * @param reason See {@link SpawnError.reason}.
   */
  constructor(message: string, reason: "not-found" | "not-runnable") {
    super(message);
    this.name = "SpawnError";
    this.reason = reason;
  }
}

/**
 * Variables for a child's environment, on top of this process's: a string
 * sets one, `undefined` removes an inherited one (under Deno, only where it
 * may read the whole environment; else it is set empty).
 */
export type ChildEnv = Readonly<Record<string, string | undefined>>;

/** A text sink: standard output or standard error. */
export interface OutputLike {
  /** `true` when it is a terminal. */
  readonly isTerminal: boolean;
  /** Columns of the terminal, when known. */
  columns(): number | undefined;
  /** Write `text`; resolves once it has been handed to the OS. */
  write(text: string): Promise<void>;
}

/** Everything the command line uses of its runtime. */
export interface CliHost {
  /** `"node 20.19.0: node:net, node:child_process"`: the runtime, its version, and the APIs this host uses. */
  readonly describe: string;
  /** The arguments after the program's name. */
  readonly args: readonly string[];
  /** An environment variable, or `undefined` when unset (or not permitted). */
  env(name: string): string | undefined;
  /** `true` when the runtime does not permit reading `name` (Deno without `--allow-env`), so it reads as unset. */
  envDenied(name: string): boolean;
  /** `true` when standard input is a terminal: the command shares this process's terminal and its Ctrl-C. */
  readonly stdinIsTerminal: boolean;
  /** A file's text. */
  readTextFile(path: string): Promise<string>;
  readonly stdout: OutputLike;
  readonly stderr: OutputLike;
  /**
   * Start `command` with `args`, sharing this process's standard streams,
   * with this process's environment changed by `env`.
   * @throws SpawnError when it cannot be started.
   */
  spawn(command: string, args: readonly string[], env: ChildEnv): ChildProcessLike;
  /** Call `handler` on `signal` instead of the default; returns what undoes it. */
  onSignal(signal: ForwardedSignal, handler: () => void): () => void;
  /** The number of a signal, by name, for the 128+n exit status; `undefined` if unknown. */
  signalNumber(signal: string): number | undefined;
  /** `serve`'s listener: the runtime's own (`adapters/<runtime>/listen.ts`). */
  readonly listen: Listen;
  /** End the process with `code` (after awaiting every write). */
  exit(code: number): never;
}
