/**
 * A dflockd for your tests, in the process: `startTestServer()` listens on a
 * free port and answers as dflockd v1.10.0 does (or as v1.16 or v2.1: the
 * `version` option), with controls a test needs
 * (stop, crash, restart on the same port, stats). It uses the runtime's own
 * listener: `Deno.listen` under Deno, `Bun.listen` under Bun, `node:net`
 * elsewhere. It is for tests and first steps; production uses dflockd.
 *
 * @example
 * ```ts
 * import { DistributedLock } from "@dflockd/client";
 * import { startTestServer } from "@dflockd/client/testing";
 *
 * await using server = await startTestServer();
 * await new DistributedLock({ key: "job", servers: server.servers }).withLock(async () => {
 *   // critical section
 * });
 * ```
 *
 * @module
 */
import { bunListen } from "./adapters/bun/listen.ts";
import { denoListen } from "./adapters/deno/listen.ts";
import { nodeListen } from "./adapters/node/listen.ts";
import type { Listen } from "./src/server/listen.ts";
import {
  startTestServerOn,
  type TestServer,
  type TestServerOptions,
  testServerConfig,
} from "./src/server/test-server.ts";

// What TestServer.stats() returns, the shape of the client's `stats()`: public, as a type the API names.
export type { Stats, StatsIdle, StatsLock, StatsSemaphore } from "./src/replies.ts";
export { ConfigError } from "./src/server/config.ts";
export { type TestServer, type TestServerOptions, TestServerStoppedError } from "./src/server/test-server.ts";
export type { ServerVersion } from "./src/server/versions.ts";

const g = globalThis as { Deno?: unknown; Bun?: unknown };
/** The listener of the runtime this runs on. */
const runtimeListen: Listen = g.Deno !== undefined ? denoListen : g.Bun !== undefined ? bunListen : nodeListen;

/**
 * Start a dflockd-compatible server for a test, on 127.0.0.1 and a free port
 * unless `options` say otherwise. Stop it when done: `await using` does.
 *
 * @param options dflockd's settings, named as options; every one optional.
 * @returns The running server.
 * @throws ConfigError on an unknown option or a value dflockd would refuse, before anything listens.
 * @example
 * ```ts
 * import { DistributedLock } from "@dflockd/client";
 * import { startTestServer } from "@dflockd/client/testing";
 *
 * const server = await startTestServer({ defaultLeaseTtlS: 5 });
 * try {
 *   const lock = new DistributedLock({ key: "job", servers: server.servers });
 *   await lock.acquire();
 *   await lock.release();
 * } finally {
 *   await server.stop();
 * }
 * ```
 */
export function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  try {
    return startTestServerOn(runtimeListen, testServerConfig(options));
  } catch (err) {
    return Promise.reject(err);
  }
}
