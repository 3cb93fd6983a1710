/**
 * The command line's host on Node.js: `node:child_process` for the command,
 * `process` for arguments, environment, signals and exit, `nodeListen` for
 * `serve`. Bun's host shares
 * the parts that are the same there (output, environment, signals).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { constants } from "node:os";
import { isatty } from "node:tty";
import type { ChildEnv, ChildExit, ChildProcessLike, CliHost, OutputLike } from "../../src/cli/host.ts";
import { SpawnError } from "../../src/cli/host.ts";
import { nodeListen } from "./listen.ts";

/** An output stream of this process as the command line uses it. */
export function nodeOutput(stream: NodeJS.WriteStream): OutputLike {
  // A reader that went away (`stats | head -1`: EPIPE) must not crash the process; the text just goes nowhere.
  stream.on("error", () => {});
  return {
    isTerminal: stream.isTTY === true,
    columns: () => (stream.isTTY === true ? stream.columns : undefined),
    write: (text) =>
      new Promise((resolve) => {
        stream.write(text, () => resolve());
      }),
  };
}

/** This process's environment changed by `changes`: a string sets, `undefined` removes. */
export function withEnv(changes: ChildEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** The parts of a host that Node and Bun share: all but how the command is started and how `serve` listens. */
export function processHost(describe: string): Omit<CliHost, "spawn" | "listen"> {
  return {
    describe,
    args: process.argv.slice(2),
    env: (name) => process.env[name],
    envDenied: () => false,
    stdinIsTerminal: isatty(0),
    readTextFile: (path) => readFile(path, "utf8"),
    stdout: nodeOutput(process.stdout),
    stderr: nodeOutput(process.stderr),
    onSignal(signal, handler) {
      try {
        process.on(signal, handler);
      } catch {
        return () => {}; // A signal this platform does not have.
      }
      return () => process.off(signal, handler);
    },
    signalNumber: (signal) => (constants.signals as Record<string, number | undefined>)[signal],
    exit: (code) => process.exit(code),
  };
}

/** The command line's host on Node.js. */
export function nodeCliHost(): CliHost {
  return {
    ...processHost(`node ${process.versions.node}: node:net, node:child_process`),
    listen: nodeListen,
    spawn(command, args, env): ChildProcessLike {
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(command, args, { stdio: "inherit", env: withEnv(env) });
      } catch (err) {
        // Most errors come as an "error" event; some (ENOTDIR, E2BIG, ...) are thrown here.
        throw spawnError(err as NodeJS.ErrnoException);
      }
      const exited = new Promise<ChildExit>((resolve, reject) => {
        // Without a pid the command never started; later errors (a failed kill) change nothing.
        child.on("error", (err: NodeJS.ErrnoException) => {
          if (child.pid === undefined) reject(spawnError(err));
        });
        child.once("exit", (code, signal) => resolve({ code, signal }));
      });
      return {
        exited,
        kill(signal) {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
      };
    },
  };
}

function spawnError(err: NodeJS.ErrnoException): SpawnError {
  const reason = err.code === "ENOENT" ? "not-found" : "not-runnable";
  return new SpawnError(reason === "not-found" ? "command not found" : err.message, reason);
}
