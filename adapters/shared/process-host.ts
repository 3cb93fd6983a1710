/**
 * The parts of the command line's host that Node and Bun share (Bun runs
 * them through its `node:` modules): output, environment, signals, exit.
 * How the command is started and how `serve` listens are each runtime's own.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { constants } from "node:os";
import { isatty } from "node:tty";
import type { ChildEnv, CliHost, OutputLike } from "../../src/cli/host.ts";

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
