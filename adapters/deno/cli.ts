/**
 * The command line's host on Deno: `Deno.Command` for the command,
 * `Deno.addSignalListener` for signals, `Deno.stdout`/`Deno.stderr`,
 * `Deno.env` and `Deno.readTextFile`, `denoListen` for `serve`. Needs only
 * the permissions docs/cli.md lists (net, run, and env/read for what the
 * options name).
 *
 * @module
 */
import type { ChildEnv, ChildExit, ChildProcessLike, CliHost, OutputLike } from "../../src/cli/host.ts";
import { SpawnError } from "../../src/cli/host.ts";
import { denoListen } from "./listen.ts";

/** Signal numbers (Linux and macOS agree on these) for the 128+N status; Deno reports the rest itself. */
const NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

function output(file: typeof Deno.stdout): OutputLike {
  const encoder = new TextEncoder();
  const terminal = file.isTerminal();
  return {
    isTerminal: terminal,
    columns() {
      try {
        return terminal ? Deno.consoleSize().columns : undefined;
      } catch {
        return undefined;
      }
    },
    async write(text) {
      const bytes = encoder.encode(text);
      try {
        for (let done = 0; done < bytes.length; ) done += await file.write(bytes.subarray(done));
      } catch {
        // A closed pipe is not the command's failure: the text just goes nowhere.
      }
    },
  };
}

function envGranted(name: string): boolean {
  return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted";
}

/**
 * `Deno.Command`'s options for `changes`. Setting a variable needs no
 * permission. Removing an inherited one means passing the whole environment
 * instead of inheriting it, which takes reading all of it (a plain
 * `--allow-env`); without that, the variable is set empty.
 */
function envOptions(changes: ChildEnv): { env: Record<string, string>; clearEnv?: boolean } {
  const set: Record<string, string> = {};
  const removed: string[] = [];
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) removed.push(k);
    else set[k] = v;
  }
  if (removed.length === 0) return { env: set };
  if (Deno.permissions.querySync({ name: "env" }).state === "granted") {
    const all = Deno.env.toObject();
    for (const k of removed) delete all[k];
    return { env: { ...all, ...set }, clearEnv: true };
  }
  for (const k of removed) set[k] = "";
  return { env: set };
}

/** The command line's host on Deno. */
export function denoCliHost(): CliHost {
  return {
    describe: `deno ${Deno.version.deno}: Deno.connect, Deno.Command`,
    args: Deno.args,
    env(name) {
      // Unset unless permitted: asking would prompt on a terminal for a variable the user may not use.
      return envGranted(name) ? Deno.env.get(name) : undefined;
    },
    envDenied: (name) => !envGranted(name),
    stdinIsTerminal: Deno.stdin.isTerminal(),
    readTextFile: (path) => Deno.readTextFile(path),
    stdout: output(Deno.stdout),
    stderr: output(Deno.stderr),
    spawn(command, args, env): ChildProcessLike {
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(command, {
          ...envOptions(env),
          args: [...args],
          stdin: "inherit",
          stdout: "inherit",
          stderr: "inherit",
        }).spawn();
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) throw new SpawnError("command not found", "not-found");
        throw new SpawnError(err instanceof Error ? err.message : String(err), "not-runnable");
      }
      let done = false;
      const exited = child.status.then((s): ChildExit => {
        done = true;
        return { code: s.code, signal: s.signal };
      });
      return {
        exited,
        kill(signal) {
          if (done) return;
          try {
            child.kill(signal);
          } catch {
            // It ended in the meantime.
          }
        },
      };
    },
    onSignal(signal, handler) {
      try {
        Deno.addSignalListener(signal, handler);
      } catch {
        return () => {}; // A signal this platform does not have.
      }
      return () => Deno.removeSignalListener(signal, handler);
    },
    signalNumber: (signal) => NUMBERS[signal],
    listen: denoListen,
    exit: (code) => Deno.exit(code),
  };
}
