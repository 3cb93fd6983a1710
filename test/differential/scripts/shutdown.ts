/**
 * Scripts of a graceful shutdown (SIGTERM to a real server): blocked requests
 * are answered `error`, open connections are served until the shutdown
 * timeout, the read timeout still applies, and nothing new is accepted.
 */
import type { Script } from "../runner.ts";

const T = (n: number): string => `T${n}`;
const r = (cmd: string, key: string, arg = ""): [string, string, string] => [cmd, key, arg];

/** Blocked `l` and `w` get `error`; the rest is served until --shutdown-timeout, then every connection closes. */
const drain: Script = {
  name: "shutdown drains until its timeout",
  flags: ["--shutdown-timeout", "2", "--lease-sweep-interval", "1"],
  steps: [
    // A connection that comes and goes first: the drain must still wait for the others.
    { c: "pre", req: r("stats", "_") },
    { c: "pre", close: true },
    { c: "a", req: r("l", "k", "0") },
    { c: "b", later: r("l", "k", "10") },
    { c: "d", req: r("l", "q", "0") },
    { c: "e", req: r("e", "q", "") },
    { c: "e", later: r("w", "q", "10") },
    { c: "c", req: r("l", "x", "0 1") },
    // Until "pre"'s close has been seen as well: a server under load may count it a moment longer.
    {
      c: "a",
      poll: r("stats", "_"),
      until: /"connections":5,.*"waiters":1.*"waiters":1/,
      everyMs: 10,
      within: [0, 2000],
    },
    { mark: true },
    { shutdown: true },
    { c: "b", await: 1, within: [0, 800] },
    { c: "e", await: 1, within: [0, 800] },
    // Nothing new is accepted.
    { c: "new", closed: true, within: [0, 800] },
    // Open connections are still served: a renewal, a release, a grant on a free key.
    { c: "a", req: r("n", "k", T(1)) },
    { c: "a", req: r("r", "k", T(1)) },
    { c: "a", req: r("l", "k", "5") },
    // A request that would wait is cut at once. (A try, `l` with timeout 0, is not compared: the Go
    // server picks `timeout` or the cut at random.)
    { c: "d", req: r("l", "q", "5") },
    // The lease sweep has stopped: x's 1 s lease has run out, and stats still lists it.
    { sleep: 1_500 },
    { c: "a", req: r("stats", "_") },
    { c: "a", closed: true, within: [1700, 3200] },
    { c: "c", closed: true, within: [0, 3200] },
    { c: "d", closed: true, within: [0, 3200] },
  ],
};

/** While draining, a connection silent past --read-timeout gets `error` and is closed. */
const drainReadTimeout: Script = {
  name: "shutdown keeps the read timeout",
  flags: ["--shutdown-timeout", "10", "--read-timeout", "1"],
  steps: [
    { c: "a", req: r("l", "k", "0") },
    { c: "b", req: r("stats", "_") },
    { mark: true },
    { shutdown: true },
    { c: "a", req: r("n", "k", T(1)) },
    { c: "b", closed: true, within: [700, 2200] },
    { c: "a", closed: true, within: [700, 2200] },
  ],
};

export { drain, drainReadTimeout };
