/**
 * Scripts where time passes: lease expiry, the read timeout, lapsed
 * grants, garbage collection, no release on disconnect.
 */
import type { Script } from "../runner.ts";

const T = (n: number): string => `T${n}`;
const r = (cmd: string, key: string, arg = ""): [string, string, string] => [cmd, key, arg];

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
    // A lapsed grant seen before the sweep is "lapsed leases before the sweep"'s subject, with a 30 s sweep:
    // here, with a 1 s sweep, whether it has run 1.05 s after a grant was a race that a busy machine lost.
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

/** Leases that ran out before the sweep came by (it comes every 30 s here). */
const lapsed: Script = {
  name: "lapsed leases before the sweep",
  flags: ["--lease-sweep-interval", "30"],
  steps: [
    { c: "a", req: r("l", "k1", "0 1") },
    { c: "a", req: r("l", "k2", "0 1") },
    { c: "a", req: r("e", "k3", "1") },
    { c: "a", req: r("l", "k4", "0 1") },
    // A grant from the queue whose lease runs out before w collects it: w restarts it (it was not swept).
    { c: "c", req: r("l", "k5", "0") },
    { c: "b", req: r("e", "k5", "1") },
    { c: "c", req: r("r", "k5", T(5)) },
    { sleep: 1_200 },
    { c: "a", req: r("stats", "_") },
    { c: "a", req: r("r", "k1", T(1)) },
    { c: "a", req: r("n", "k2", T(2)) },
    { c: "a", req: r("w", "k3", "0") },
    { c: "b", req: r("l", "k4", "0") },
    { c: "a", req: r("r", "k4", T(4)) },
    { c: "b", req: r("w", "k5", "5") },
    { c: "a", req: r("stats", "_") },
  ],
};

/** `w` restarts the lease of a grant it collects; a grant that lapsed after the sweep. */
const collect: Script = {
  name: "collecting grants with w",
  flags: ["--lease-sweep-interval", "1"],
  steps: [
    // Held 4 s before w: restarted, ~20 s are left; not restarted, ~16 (beyond the comparison's tolerance).
    { c: "a", req: r("e", "k", "20") },
    { sleep: 4_000 },
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

const BOGUS = "0123456789abcdef0123456789abcdef";
/** A request every 500 ms for 3.5 s, alternating a failed release and a failed renewal of `key`. */
const poke = (c: string, key: string, sem: boolean): Script["steps"] =>
  Array.from({ length: 7 }, (_, i) => [
    { sleep: 500 },
    { c, req: r(`${sem ? "s" : ""}${i % 2 === 0 ? "r" : "n"}`, key, BOGUS) },
  ]).flat();

/** A failed `r` or `n` still counts as activity: it keeps a key, and a semaphore's limit, through GC. */
const activity: Script = {
  name: "failed requests keep keys alive",
  flags: ["--gc-interval", "1", "--gc-max-idle", "2"],
  steps: [
    { c: "a", req: r("l", "k", "0") },
    { c: "a", req: r("r", "k", T(1)) },
    { c: "a", req: r("sl", "s", "0 3") },
    { c: "a", req: r("sr", "s", T(2)) },
    { c: "a", req: r("l", "gone", "0") },
    { c: "a", req: r("r", "gone", T(3)) },
    ...poke("b", "k", false),
    ...poke("c", "s", true).filter((step) => !("sleep" in step)),
    { c: "d", req: r("stats", "_") },
    { c: "d", req: r("sl", "s", "0 4") },
  ],
};

export { activity, collect, expiry, gc, lapsed, noAutoRelease, readTimeout };
