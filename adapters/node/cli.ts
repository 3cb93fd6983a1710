/**
 * The command line's host on Node.js: `node:child_process` for the command,
 * `process` for arguments, environment, signals and exit, `nodeListen` for
 * `serve`. The parts Bun's host shares (output, environment, signals) are in
 * `adapters/shared/process-host.ts`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildExit, ChildProcessLike, CliHost } from "../../src/cli/host.ts";
import { SpawnError } from "../../src/cli/host.ts";
import { processHost, withEnv } from "../shared/process-host.ts";
import { nodeListen } from "./listen.ts";

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
