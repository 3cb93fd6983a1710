/**
 * Request scripts that a real dflockd and the double must answer alike.
 * Timings are windows wide enough for a busy 2-core machine: a server passes
 * when its reply lands inside, and the two servers are compared on that.
 */
import { testCerts } from "../harness/certs.ts";
import type { Script } from "./runner.ts";

const T = (n: number): string => `T${n}`;
const r = (cmd: string, key: string, arg = ""): [string, string, string] => [cmd, key, arg];

/** Every command's success path and every error status, on one connection and a second one. */
const commands: Script = {
  name: "commands and statuses",
  steps: [
    { c: "a", req: r("l", "k", "0") },
    { c: "a", req: r("n", "k", T(1)) },
    { c: "a", req: r("n", "k", `${T(1)} 7`) },
    { c: "a", req: r("stats", "_") },
    { c: "b", req: r("l", "k", "0") },
    { c: "b", req: r("r", "k", T(1)) },
    { c: "b", req: r("n", "k", T(1)) },
    { c: "a", req: r("r", "k", "0123456789abcdef0123456789abcdef") },
    { c: "a", req: r("r", "k", T(1)) },
    { c: "a", req: r("r", "k", T(1)) },
    { c: "a", req: r("n", "k", T(1)) },
    { c: "a", req: r("l", "k", "0 5") },
    { c: "a", req: r("r", "other", T(2)) },
    { c: "a", req: r("r", "k", T(2)) },
    { c: "a", req: r("sl", "s", "0 2") },
    { c: "b", req: r("sl", "s", "0 2 9") },
    { c: "c", req: r("sl", "s", "0 2") },
    { c: "c", req: r("sl", "s", "0 3") },
    { c: "a", req: r("sn", "s", T(3)) },
    { c: "a", req: r("sn", "s", `${T(3)} 4`) },
    { c: "a", req: r("n", "s", T(3)) },
    { c: "a", req: r("stats", "_") },
    { c: "a", req: r("sr", "s", T(3)) },
    { c: "a", req: r("sr", "s", T(3)) },
    { c: "b", req: r("sr", "s", T(4)) },
    { c: "a", req: r("l", "s", "0") },
    { c: "a", req: r("sl", "k", "0 1") },
    { c: "a", req: r("stats", "_") },
    { c: "a", req: r("auth", "_", "anything") },
    { c: "a", req: r("ping", "_") },
  ],
};

/** Two-phase acquisition: every reply of `e`/`w` and their semaphore twins. */
const twoPhase: Script = {
  name: "two-phase",
  steps: [
    { c: "a", req: r("e", "k", "") },
    { c: "a", req: r("e", "k", "") },
    { c: "a", req: r("w", "k", "1") },
    { c: "a", req: r("w", "k", "1") },
    { c: "b", req: r("w", "k", "1") },
    { c: "b", req: r("e", "k", "9") },
    { c: "b", req: r("w", "k", "0") },
    { c: "b", req: r("stats", "_") },
    { c: "b", req: r("e", "k", "9") },
    { c: "a", req: r("r", "k", T(1)) },
    { c: "b", req: r("stats", "_") },
    { c: "b", req: r("w", "k", "5") },
    { c: "c", req: r("e", "k", "") },
    { c: "c", later: r("w", "k", "5") },
    { c: "b", req: r("r", "k", T(2)) },
    { c: "c", await: 1 },
    { c: "a", req: r("se", "s", "2") },
    { c: "b", req: r("se", "s", "2 9") },
    { c: "d", req: r("se", "s", "2") },
    { c: "d", req: r("se", "s", "3") },
    { c: "e", req: r("se", "s", "3") },
    { c: "a", req: r("sw", "s", "1") },
    { c: "d", req: r("sw", "s", "0") },
    { c: "e", req: r("sw", "s", "0") },
    { c: "a", req: r("stats", "_") },
    { c: "f", req: r("e", "k2", "") },
    { c: "f", req: r("r", "k2", T(6)) },
    { c: "f", req: r("w", "k2", "0") },
    { c: "f", req: r("sl", "k", "0 1") },
    { c: "f", req: r("l", "s", "0") },
    { c: "f", req: r("e", "s", "") },
  ],
};

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

/** Leases run out: the sweep hands the key to a waiter; a polling contender gets it on the spot. */
const expiry: Script = {
  name: "lease expiry",
  flags: ["--lease-sweep-interval", "1"],
  steps: [
    { c: "a", req: r("l", "k", "0 1") },
    { mark: true },
    { c: "b", later: r("l", "k", "10") },
    { c: "b", await: 1, within: [800, 2600] },
    { c: "a", req: r("n", "k", T(1)) },
    { c: "a", req: r("r", "k", T(1)) },
    { c: "c", req: r("l", "p", "0 1") },
    { mark: true },
    { c: "d", poll: r("l", "p", "0"), until: /^ok/, everyMs: 10, within: [900, 1300] },
    { c: "c", req: r("r", "p", T(3)) },
    { c: "e", req: r("sl", "s", "0 1 1") },
    { mark: true },
    { c: "f", poll: r("sl", "s", "0 1"), until: /^ok/, everyMs: 10, within: [900, 1300] },
    { c: "e", req: r("sn", "s", T(5)) },
    { c: "g", req: r("e", "q", "1") },
    { c: "h", req: r("l", "q2", "0 1") },
    { c: "g", req: r("e", "q2", "4") },
    { mark: true },
    // q's lease (1 s) has run out; q2 went to g by the sweep within 2 s and runs 4 s.
    { sleep: 3_000 },
    { c: "g", req: r("w", "q", "1") },
    { c: "g", req: r("w", "q2", "1") },
    // Before the sweep: every server sees the lapsed grant.
    { c: "i", req: r("e", "q3", "1") },
    { sleep: 1_050 },
    { c: "i", req: r("w", "q3", "0") },
  ],
};

/** The read timeout cuts idle connections, not blocked ones. */
const readTimeout: Script = {
  name: "read timeout",
  flags: ["--read-timeout", "1"],
  steps: [
    { c: "a", req: r("l", "k", "0") },
    { mark: true },
    { c: "b", later: r("l", "k", "2") },
    { c: "a", closed: true, within: [800, 2000] },
    { c: "b", await: 1, within: [0, 1500] },
    { c: "c", raw: "l\nk" },
    { mark: true },
    { c: "c", closed: true, within: [800, 2000] },
    { c: "d", req: r("l", "x", "0") },
    { c: "e", later: r("l", "x", "3") },
    { mark: true },
    // The holder keeps its connection busy; the blocked `l` outlasts the read timeout.
    ...Array.from({ length: 8 }, () => [{ sleep: 400 }, { c: "d", req: r("n", "x", T(3)) }]).flat(),
    { c: "e", await: 1, within: [2800, 4500] },
    { c: "e", req: r("stats", "_") },
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

/** Malformed requests: each gets a reply, or a close, as on the server. */
const malformed: Script = {
  name: "malformed input",
  steps: [
    { c: "a", req: r("L", "k", "0") },
    { c: "a", req: r("", "k", "0") },
    { c: "a", req: r("l", "", "0") },
    { c: "a", req: r("l", "a b", "0") },
    { c: "a", req: r("l", "a\tb", "0") },
    { c: "a", req: r("l", "k", "") },
    { c: "a", req: r("l", "k", "-1") },
    { c: "a", req: r("l", "k", "1.5") },
    { c: "a", req: r("l", "k", "+0") },
    { c: "a", req: r("l", "k", "00 007") },
    { c: "a", req: r("l", "k2", "0 0") },
    { c: "a", req: r("l", "k3", "0 -5") },
    { c: "a", req: r("l", "k4", "0 1 2") },
    { c: "a", req: r("l", "k5", "99999999999999999999") },
    { c: "a", req: r("l", "k6", "  0   3  ") },
    { c: "a", req: r("l", "k7", "0\u00a03") },
    { c: "a", req: r("l", "k8", "0\u30003") },
    { c: "a", req: r("sl", "s", "0 0") },
    { c: "a", req: r("sl", "s", "0") },
    { c: "a", req: r("se", "s", "") },
    { c: "a", req: r("e", "k9", "1 2") },
    { c: "a", req: r("w", "k9", "") },
    { c: "a", req: r("r", "k9", "") },
    { c: "a", req: r("n", "k9", "") },
    { c: "a", req: r("r", "k9", "x y") },
    { c: "a", raw: "l\r\nkr\r\n0\r\n", replies: 1 },
    { c: "a", raw: "stats\n_\nextra\n", replies: 1 },
    { c: "a", req: r("stats", "_") },
    { c: "b", raw: `l\n${"k".repeat(256)}\n0\n`, replies: 1 },
    { c: "b", raw: `l\n${"k".repeat(257)}\n0\n`, replies: 1 },
    { c: "b", closed: true },
    { c: "c", raw: `${"l".repeat(300)}`, replies: 1 },
    { c: "c", closed: true },
  ],
};

/** Keys the server stores byte for byte, and how stats shows them. */
const keys: Script = {
  name: "unusual keys",
  steps: [
    { c: "a", req: r("l", "\u00a0", "0") },
    { c: "a", req: r("l", "\u3000x", "0") },
    { c: "a", req: r("l", "\ufeff", "0") },
    { c: "a", req: r("l", "\u000b\u000c", "0") },
    { c: "a", req: r("l", "\u0000\u0001\u007f", "0") },
    { c: "a", req: r("l", '\u2028<&>"\\', "0") },
    { c: "a", req: r("l", "é🔒", "0") },
    { c: "a", raw: new Uint8Array([0x6c, 0x0a, 0xff, 0xfe, 0x0a, 0x30, 0x0a]), replies: 1 },
    { c: "a", req: r("stats", "_") },
    { c: "b", req: r("l", "\u00a0", "0") },
    { c: "b", req: r("l", " \u00a0", "0") },
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

/** An auth token read from a file is trimmed; one given as a flag is not. */
const authFile: Script = {
  name: "auth token flag taken as it is",
  flags: ["--auth-token", " padded "],
  steps: [
    { c: "a", req: r("auth", "_", " padded ") },
    { c: "a", closed: true },
  ],
};

/** Leases that ran out before the sweep came by (it comes every 30 s here). */
const lapsed: Script = {
  name: "lapsed leases before the sweep",
  flags: ["--lease-sweep-interval", "30"],
  steps: [
    { c: "a", req: r("l", "k1", "0 1") },
    { c: "a", req: r("l", "k2", "0 1") },
    { c: "a", req: r("e", "k3", "1") },
    { c: "a", req: r("l", "k4", "0 1") },
    { sleep: 1_200 },
    { c: "a", req: r("stats", "_") },
    { c: "a", req: r("r", "k1", T(1)) },
    { c: "a", req: r("n", "k2", T(2)) },
    { c: "a", req: r("w", "k3", "0") },
    { c: "b", req: r("l", "k4", "0") },
    { c: "a", req: r("r", "k4", T(4)) },
    { c: "a", req: r("stats", "_") },
  ],
};

/** `w` restarts the lease of a grant it collects; a grant that lapsed after the sweep. */
const collect: Script = {
  name: "collecting grants with w",
  flags: ["--lease-sweep-interval", "1"],
  steps: [
    { c: "a", req: r("e", "k", "10") },
    { sleep: 1_500 },
    { c: "a", req: r("w", "k", "0") },
    { c: "a", req: r("stats", "_") },
    { c: "b", req: r("l", "q", "0 1") },
    { c: "c", req: r("e", "q", "1") },
    { c: "d", req: r("e", "z", "1") },
    // b's lease lapses, the sweep hands q to c (within 2 s), c's lapses and is swept (within 4 s).
    { sleep: 4_500 },
    { c: "c", req: r("w", "q", "0") },
    { c: "c", req: r("w", "q", "0") },
    { c: "d", req: r("w", "z", "0") },
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

/** With --auto-release-on-disconnect=false a closed holder keeps its lease. */
const noAutoRelease: Script = {
  name: "no release on disconnect",
  flags: ["--auto-release-on-disconnect=false", "--lease-sweep-interval", "1"],
  steps: [
    { c: "a", req: r("l", "k", "0 2") },
    { c: "a", req: r("e", "q", "") },
    { c: "a", close: true },
    { mark: true },
    { c: "b", req: r("l", "k", "0") },
    { c: "b", later: r("l", "k", "10") },
    { c: "b", await: 1, within: [1500, 3500] },
  ],
};

/** Idle keys are collected, and count towards --max-locks until then. */
const gc: Script = {
  name: "garbage collection of idle keys",
  flags: ["--gc-interval", "1", "--gc-max-idle", "1", "--max-locks", "1"],
  steps: [
    { c: "a", req: r("sl", "g", "0 3") },
    { c: "a", req: r("sr", "g", T(1)) },
    { c: "a", req: r("l", "other", "0") },
    { c: "a", req: r("sl", "g", "0 2") },
    { mark: true },
    { c: "a", poll: r("sl", "g", "0 2"), until: /^ok/, everyMs: 50, within: [900, 3500] },
    { c: "a", req: r("stats", "_") },
  ],
};

/** Carriage returns and seconds at the edges, where builds differ. */
const edges: Script = {
  name: "carriage returns and large numbers",
  steps: [
    { c: "a", req: r("l", "a\rb", "0") },
    { c: "a", req: r("l", "k", "0\r30") },
    { c: "a", req: r("l", "big", "9223372036") },
    { c: "a", req: r("l", "bigger", "9223372037") },
    { c: "a", req: r("w", "big", "9223372037") },
    { c: "a", req: r("n", "k", `${T(1)} 9223372036`) },
    { c: "a", req: r("sl", "s", "0 9223372036854775807") },
    { c: "a", req: r("stats", "_") },
    { c: "b", raw: `l\n${"k".repeat(255)}\r\n0\n`, replies: 1 },
    { c: "b", raw: `l\n${"k".repeat(256)}\r\n0\n`, replies: 1 },
    { c: "b", closed: true },
    { c: "c", raw: `l\n${"é".repeat(128)}\n0\n`, replies: 1 },
    { c: "c", raw: `l\n${"é".repeat(129)}\n0\n`, replies: 1 },
    { c: "c", closed: true },
  ],
};

/** Pipelined requests are answered in order; a blocked one holds up the rest. */
const pipelining: Script = {
  name: "pipelining",
  steps: [
    { c: "a", raw: "l\np1\n0\nl\np2\n0\nbogus\nx\n\nstats\n_\n\nl\np1\n0\n", replies: 5 },
    { c: "b", raw: "l\np1\n1\nstats\n_\n\n" },
    { mark: true },
    { c: "b", await: 2, within: [900, 2000] },
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

/** Every script of the differential test. */
export function scripts(): Script[] {
  return [
    commands,
    twoPhase,
    fifo,
    expiry,
    readTimeout,
    limits,
    malformed,
    keys,
    auth,
    authFile,
    lapsed,
    collect,
    deadWaiter,
    noAutoRelease,
    gc,
    edges,
    pipelining,
    tlsScript(),
  ];
}
