/**
 * The command line's host on Bun: `Bun.spawn` for the command, `bunListen`
 * for `serve`; output, environment and signals through Bun's `process`, as
 * on Node.
 *
 * @module
 */
import type { ChildExit, ChildProcessLike, CliHost } from "../../src/cli/host.ts";
import { SpawnError } from "../../src/cli/host.ts";
import { processHost, withEnv } from "../shared/process-host.ts";
import { bunListen } from "./listen.ts";

/** The part of `Bun.spawn`'s result this host uses. */
interface BunSubprocess {
  readonly exited: Promise<number>;
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  kill(signal?: string): void;
}

/** The part of the `Bun` global this host uses. */
interface BunSpawn {
  readonly version: string;
  spawn(
    cmd: string[],
    options: { stdio: ["inherit", "inherit", "inherit"]; env: Record<string, string> },
  ): BunSubprocess;
}

/** The command line's host on Bun. */
export function bunCliHost(): CliHost {
  const bun = (globalThis as unknown as { Bun: BunSpawn }).Bun;
  return {
    ...processHost(`bun ${bun.version}: Bun.connect, Bun.spawn`),
    listen: bunListen,
    spawn(command, args, env): ChildProcessLike {
      let proc: BunSubprocess;
      try {
        proc = bun.spawn([command, ...args], { stdio: ["inherit", "inherit", "inherit"], env: withEnv(env) });
      } catch (err) {
        const code = (err as { code?: string }).code;
        throw code === "ENOENT"
          ? new SpawnError("command not found", "not-found")
          : new SpawnError(err instanceof Error ? err.message : String(err), "not-runnable");
      }
      return {
        exited: proc.exited.then((): ChildExit => ({ code: proc.exitCode, signal: proc.signalCode })),
        kill(signal) {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        },
      };
    },
  };
}
