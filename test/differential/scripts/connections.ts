/**
 * Scripts about connections: FIFO hand-offs between them, peers that go
 * away, limits, auth, TLS.
 */
import { testCerts } from "../../harness/certs.ts";
import type { Script } from "../runner.ts";

const T = (n: number): string => `T${n}`;
const r = (cmd: string, key: string, arg = ""): [string, string, string] => [cmd, key, arg];

/** FIFO hand-offs between blocked `l` requests, and release on disconnect. */
const fifo: Script = {
  name: "FIFO hand-offs and disconnects",
  steps: [
    { c: "a", req: r("l", "k", "0") },
    { c: "b", later: r("l", "k", "10") },
    { c: "d", poll: r("stats", "_"), until: /"waiters":1/, everyMs: 10, within: [0, 2000] },
    { c: "c", later: r("l", "k", "10 4") },
    { c: "d", poll: r("stats", "_"), until: /"waiters":2/, everyMs: 10, within: [0, 2000] },
    { c: "a", req: r("r", "k", T(1)) },
    { c: "b", await: 1 },
    { c: "d", req: r("stats", "_") },
    { c: "b", close: true },
    { c: "c", await: 1 },
    { c: "d", req: r("stats", "_") },
    { c: "c", later: r("l", "k", "1") },
    { c: "c", await: 1, within: [900, 2500] },
    { c: "c", req: r("sl", "s", "0 1") },
    { c: "e", later: r("sl", "s", "10 1") },
    { c: "c", close: true },
    { c: "e", await: 1 },
    { c: "d", req: r("stats", "_") },
  ],
};

/** A client that goes away while blocked is not noticed until its request ends. */
const deadWaiter: Script = {
  name: "peer gone while blocked",
  steps: [
    { c: "a", req: r("l", "k", "0") },
    { c: "b", later: r("l", "k", "10") },
    { c: "s", poll: r("stats", "_"), until: /"waiters":1/, everyMs: 10, within: [0, 2000] },
    { c: "c", later: r("l", "k", "10") },
    { c: "s", poll: r("stats", "_"), until: /"waiters":2/, everyMs: 10, within: [0, 2000] },
    { c: "b", close: true },
    { c: "s", req: r("stats", "_") },
    { mark: true },
    { c: "a", req: r("r", "k", T(1)) },
    { c: "c", await: 1, within: [0, 1000] },
    { c: "s", req: r("stats", "_") },
  ],
};

/** Server limits. */
const limits: Script = {
  name: "limits",
  flags: ["--max-locks", "2", "--max-waiters", "1", "--max-connections", "6"],
  steps: [
    { c: "a", req: r("l", "k1", "0") },
    { c: "a", req: r("sl", "k2", "0 2") },
    { c: "a", req: r("l", "k3", "0") },
    { c: "a", req: r("e", "k3", "") },
    { c: "a", req: r("sl", "k3", "0 1") },
    { c: "b", req: r("e", "k1", "") },
    { c: "c", req: r("e", "k1", "") },
    { c: "c", req: r("l", "k1", "1") },
    { c: "c", req: r("l", "k1", "0") },
    { c: "c", req: r("sl", "k2", "0 2") },
    { c: "d", req: r("se", "k2", "2") },
    { c: "e", req: r("se", "k2", "2") },
    { c: "a", req: r("stats", "_") },
    { c: "f", req: r("stats", "_") },
    { c: "g", raw: "stats\n_\n\n", replies: 0 },
    { c: "g", closed: true },
    { c: "f", req: r("stats", "_") },
  ],
};

/** Token authentication. */
const auth: Script = {
  name: "auth",
  flags: ["--auth-token", "s3cret"],
  steps: [
    { c: "a", req: r("auth", "_", "s3cret") },
    { c: "a", req: r("l", "k", "0") },
    { c: "a", req: r("auth", "_", "s3cret") },
    { c: "a", req: r("auth", "_", "wrong") },
    { c: "b", req: r("auth", "_", "  s3cret\u00a0") },
    { c: "b", req: r("stats", "_") },
    { c: "c", req: r("auth", "_", "wrong") },
    { mark: true },
    { c: "c", closed: true, within: [0, 1000] },
    { c: "d", req: r("stats", "_") },
    { mark: true },
    { c: "d", closed: true, within: [0, 1000] },
    { c: "e", req: r("auth", "x", "s3cret") },
    { c: "f", req: r("auth", "_", "x".repeat(300)) },
    { c: "f", closed: true },
    { c: "g", req: r("auth", "_", "s3cret\r") },
  ],
};

/** Before auth, silence past the read timeout, a close, or a request cut short is refused as auth. */
const authSilence: Script = {
  name: "auth refused on silence and half-close",
  flags: ["--auth-token", "s3cret", "--read-timeout", "1"],
  steps: [
    { c: "a", raw: "" },
    { c: "b", raw: "auth\n_\nwrong\n", replies: 1 },
    { c: "c", raw: "auth\n_" },
    { c: "d", raw: "" },
    { mark: true },
    { c: "c", halfClose: true },
    { c: "c", closed: true, within: [0, 800] },
    { c: "d", halfClose: true },
    { c: "d", closed: true, within: [0, 800] },
    { c: "b", closed: true, within: [0, 800] },
    { c: "a", closed: true, within: [800, 2200] },
  ],
};

/** An auth token read from a file is trimmed; one given as a flag is not. */
const authFile: Script = {
  name: "auth token flag taken as it is",
  flags: ["--auth-token", " padded "],
  steps: [
    { c: "a", req: r("auth", "_", " padded ") },
    { c: "a", closed: true },
  ],
};

/** A plain-TCP client at a TLS server gets no reply, only a close. */
function tlsScript(): Script {
  const certs = testCerts();
  return {
    name: "plain client at a TLS server",
    flags: ["--tls-cert", certs.certFile, "--tls-key", certs.keyFile],
    steps: [{ c: "a", raw: "stats\n_\n\n" }, { mark: true }, { c: "a", closed: true, within: [0, 1000] }],
  };
}

export { auth, authFile, authSilence, deadWaiter, fifo, limits, tlsScript };
