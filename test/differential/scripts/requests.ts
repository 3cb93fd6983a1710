/**
 * Scripts about single requests: every command and status, two-phase,
 * malformed input, unusual keys, edge values, pipelining.
 */
import type { Script } from "../runner.ts";

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

/**
 * Numbers the client never sends. v1.10.0 turns seconds into int64
 * nanoseconds that wrap: a lease past 9223372036 s can come out negative or
 * tiny; later builds refuse it. Limits are int64, compared exactly.
 */
const numbers: Script = {
  name: "leases and limits past the usual range",
  // No sweep during the script: a lease that ran out is seen by the requests themselves.
  flags: ["--lease-sweep-interval", "30"],
  steps: [
    // Wraps negative: refused by l, sl, se and n, which check after the wrap; e checks before it.
    { c: "a", req: r("l", "neg", "0 9223372037") },
    { c: "a", req: r("sl", "neg", "0 2 9223372037") },
    { c: "a", req: r("se", "neg", "2 9223372037") },
    { c: "a", req: r("e", "neg", "9223372037") },
    { c: "a", req: r("w", "neg", "0") },
    // Wraps to 0.29 s: the grant names the default lease, and runs out within a second.
    { c: "a", req: r("l", "tiny", "0 18446744074") },
    { c: "a", req: r("n", "tiny", `${T(2)} 18446744074`) },
    { c: "a", req: r("l", "k", "0") },
    { c: "a", req: r("n", "k", `${T(3)} 18446744073`) },
    { c: "a", req: r("n", "k", `${T(3)} 9223372036854775807`) },
    { c: "a", req: r("n", "k", `${T(3)} 9223372036854775808`) },
    // Whole seconds of a grant or renewal go through a float64, which rounds 8589934592.99999 s up.
    { c: "a", req: r("l", "f64", "0 15817298423145364") },
    { c: "a", req: r("n", "f64", `${T(4)} 15817298833210772`) },
    // A timeout that wraps negative times out at once.
    { c: "b", req: r("l", "k", "9223372036854775807") },
    // Limits past 2^53 are kept exactly.
    { c: "a", req: r("sl", "s53", "0 9007199254740993") },
    { c: "a", req: r("sl", "s53", "0 9007199254740992") },
    { c: "a", req: r("sl", "s53", "0 +9007199254740993") },
    { c: "a", req: r("stats", "_") },
    { sleep: 1_200 },
    { c: "b", req: r("l", "tiny", "0") },
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

export { commands, edges, keys, malformed, numbers, pipelining, twoPhase };
