import { afterAll, beforeAll } from "vitest";
import { type DflockdServer, startDflockd, startDflockds } from "../harness/dflockd.ts";

/** A dflockd for the whole file, started with `flags` and always stopped. */
export function useDflockd(flags: string[] = []): () => DflockdServer {
  let server: DflockdServer | undefined;
  beforeAll(async () => {
    server = await startDflockd(flags);
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error("server not started");
    return server;
  };
}

/** Several dflockd servers for the whole file. */
export function useDflockds(n: number, flags: string[] = []): () => DflockdServer[] {
  let servers: DflockdServer[] = [];
  beforeAll(async () => {
    servers = await startDflockds(n, flags);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });
  return () => servers;
}

/** Poll `cond` every 20 ms until it holds, or fail after `timeoutMs`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Let real time pass: only for tests whose subject is the passage of time (leases, read timeouts). */
export function elapse(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

let n = 0;
/** A key unique to this test run. */
export function key(prefix = "k"): string {
  return `${prefix}-${process.pid}-${++n}-${Date.now().toString(36)}`;
}
