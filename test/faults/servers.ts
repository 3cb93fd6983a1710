/**
 * Which dflockd the fault trials run against, and restarting one on the same
 * port after a SIGKILL (the harness picks a fresh port for every start).
 */

import { startDouble } from "../double/server.ts";
import { currentServer, startDflockd } from "../harness/dflockd.ts";
import { sleep } from "./raw.ts";

/** A server kind (the double, or a real binary) and the flags to start it with. */
export interface ServerSpec {
  readonly choice: "double" | { bin: string };
  readonly flags: readonly string[];
}

/** The run's server (see the harness), with a 1 s lease sweep. */
export function runServer(choice: "double" | { bin: string } = currentServer()): ServerSpec {
  return { choice, flags: ["--lease-sweep-interval", "1"] };
}

/** Something that can be stopped. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Start `spec` again on `port`, as an operator's supervisor would after a
 * crash. Retries for up to 3 s while the port is still taken.
 */
export async function restartServer(spec: ServerSpec, port: number): Promise<Stoppable> {
  const portFlags = ["--port", String(port)];
  const end = performance.now() + 3_000;
  for (;;) {
    try {
      if (spec.choice === "double") return await startDouble(["--host", "127.0.0.1", ...portFlags, ...spec.flags]);
      // The harness puts its own --port first; the last one given wins.
      return await startDflockd([...spec.flags, ...portFlags], spec.choice);
    } catch (err) {
      if (performance.now() > end) throw err;
      await sleep(20);
    }
  }
}

/** A label for logs: "double" or the binary's file name. */
export function serverLabel(spec: ServerSpec): string {
  return spec.choice === "double" ? "double" : `real ${spec.choice.bin.split("/").pop() ?? spec.choice.bin}`;
}
