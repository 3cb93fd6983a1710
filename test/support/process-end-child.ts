/**
 * The child process of test/transport/process-end.test.ts, run by the runtime
 * under test. It prints one JSON line, then ends by itself (`certs`) or stays
 * alive until a signal ends it (`certs wait`, `server`).
 *
 * - `certs [wait]`: makes the TLS test certificates; prints their `dir`.
 * - `server <bun> <cli.ts>`: registers a cleanup that throws, makes the
 *   certificates, and starts the dflockd double as a process of its own
 *   through the harness; prints `dir`, the server's `pid`, and how many
 *   SIGTERM and SIGINT listeners the process has.
 */
import process from "node:process";
import { testCerts } from "../harness/certs.ts";
import { startDflockd } from "../harness/dflockd.ts";
import { onProcessEnd } from "../harness/process-end.ts";

const [mode, ...rest] = process.argv.slice(2);
if (mode === "server") {
  const [bun, cli] = rest;
  onProcessEnd(() => {
    throw new Error("a cleanup that throws");
  });
  const dir = testCerts().dir;
  const server = await startDflockd([], { bin: String(bun), args: [String(cli)] });
  const listeners = { SIGTERM: process.listenerCount("SIGTERM"), SIGINT: process.listenerCount("SIGINT") };
  console.log(JSON.stringify({ dir, pid: server.pid, listeners }));
  setInterval(() => {}, 60_000);
} else {
  console.log(JSON.stringify({ dir: testCerts().dir }));
  if (rest[0] === "wait") setInterval(() => {}, 60_000);
}
