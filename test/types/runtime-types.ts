/**
 * Type tests of the `runtime` option and the runtimes the entry points
 * export, checked by `tsc -p .` (strict, exactOptionalPropertyTypes). Never
 * run: every `@ts-expect-error` line must be an error, or the check fails.
 */
import { bunRuntime } from "../../adapters/bun/index.ts";
import { denoRuntime } from "../../adapters/deno/index.ts";
import {
  connect,
  DflockdClient,
  DistributedLock,
  DistributedSemaphore,
  nodeRuntime,
  type Runtime,
  stats,
} from "../../adapters/node/index.ts";

export async function accepted(): Promise<void> {
  const runtimes: Runtime[] = [nodeRuntime, bunRuntime, denoRuntime];
  const client = new DflockdClient({ runtime: runtimes[0] });
  new DistributedLock({ key: "k", runtime: bunRuntime });
  new DistributedSemaphore({ key: "k", limit: 2, runtime: denoRuntime });
  (await connect({ runtime: nodeRuntime })).close();
  await stats({ runtime: nodeRuntime });
  // Undefined: the default runtime.
  new DistributedLock({ key: "k", runtime: undefined });
  // A runtime is the client's: not per lock.
  // @ts-expect-error runtime is not a per-lock option of a client's lock
  client.lock("k", { runtime: nodeRuntime });
  // @ts-expect-error a runtime's name alone is not a runtime
  new DflockdClient({ runtime: "node" });
  client.close();
}
