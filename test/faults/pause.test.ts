/**
 * Invariant I2: `held`, `state` and `assertHeld()` read the monotonic clock.
 * Once it has passed the loss deadline they report the lock lost, and carry
 * the loss out then and there (the holding's signal aborted before they
 * return), whether or not a timer has run.
 *
 * Both tests run a child process of the runtime under test (pause-child.ts)
 * that holds locks on the run's server through the public API and reports
 * what they say, timed on its own clock; the verdicts come from those
 * readings, so a busy machine changes none of them.
 *
 * - pause: the child holds a key (2 s lease) and samples it every 5 ms. Once
 *   it holds, this process SIGSTOPs it, takes the key on the server with a
 *   blocking `l` (granted once the server lets the child's lease go), makes
 *   one more round trip there, and SIGCONTs it. Every sample after the pause
 *   is taken while the contender holds: any that says `held` is stale, and
 *   the first one must already say `lost`, with the signal aborted by a
 *   LockLostError.
 * - busy: the child blocks its event loop for a lease and more, then, in the
 *   same synchronous code, reads one lock with `held` first and another with
 *   `assertHeld()` first: both must say lost (`assertHeld()` must exist and
 *   throw LockLostError).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { nodeBundle, ROOT, RUNTIME, runFile } from "../support/runtime.ts";
import { RawConn } from "./raw.ts";
import { runServer, serverLabel } from "./servers.ts";

const LEASE_S = 2;
const spec = runServer();
const label = `[${RUNTIME}, ${serverLabel(spec)}]`;

let server: DflockdServer | undefined;
/** The child script and the library it imports, as this runtime runs them. */
let childFile = join(import.meta.dirname, "pause-child.ts");
let entry = pathToFileURL(join(ROOT, "mod.ts")).href;
const running = new Set<ChildProcess>();

beforeAll(async () => {
  server = await startDflockd([...spec.flags], spec.choice);
  if (RUNTIME === "node") {
    // Node 20 runs no TypeScript: the child and the library it is given, bundled.
    childFile = await nodeBundle(childFile);
    entry = pathToFileURL(await nodeBundle(join(ROOT, "mod.ts"))).href;
  }
});

/**
 * Send `sig` to a child still running. `process.kill`, not `child.kill()`:
 * Deno's `child.kill()` sends one signal in a child's life and ignores the rest.
 */
function signal(p: ChildProcess, sig: NodeJS.Signals): void {
  if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    // Ended meanwhile.
  }
}

afterEach(() => {
  for (const p of running) {
    signal(p, "SIGCONT");
    signal(p, "SIGKILL");
  }
  running.clear();
});

afterAll(async () => {
  await server?.stop();
});

/** A JSON line from the child. */
type Line = Record<string, unknown> & { ev: string; t?: number };

interface Child {
  readonly proc: ChildProcess;
  /** Lines so far. */
  readonly lines: Line[];
  /** The first line (already seen or still to come) that satisfies `pred`. */
  next(pred: (l: Line) => boolean): Promise<Line>;
  /** Resolves with the exit code once the child has ended and its output is read. */
  readonly ended: Promise<number | null>;
  stderr(): string;
}

function startChild(mode: "pause" | "busy", key: string): Child {
  const s = server as DflockdServer;
  const [cmd, args] = runFile(childFile);
  const proc = spawn(cmd, [...args, entry, s.host, String(s.port), key, String(LEASE_S), mode], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(proc);
  const lines: Line[] = [];
  const waiters: Array<{ pred: (l: Line) => boolean; resolve: (l: Line) => void; reject: (e: Error) => void }> = [];
  let buf = "";
  let err = "";
  proc.stdout?.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf("\n"); nl !== -1; nl = buf.indexOf("\n")) {
      const line = JSON.parse(buf.slice(0, nl)) as Line;
      buf = buf.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.filter((x) => x.pred(line))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  proc.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const ended = new Promise<number | null>((resolve) => {
    proc.once("close", (code) => {
      running.delete(proc);
      for (const w of waiters.splice(0)) w.reject(new Error(`the child ended (code ${code}) first:\n${err}`));
      resolve(code);
    });
  });
  return {
    proc,
    lines,
    next: (pred) =>
      new Promise((resolve, reject) => {
        const seen = lines.find(pred);
        if (seen !== undefined) resolve(seen);
        else if (proc.exitCode !== null || proc.signalCode !== null) reject(new Error(`the child ended:\n${err}`));
        else waiters.push({ pred, resolve, reject });
      }),
    ended,
    stderr: () => err,
  };
}

const newKey = (what: string): string => `${what}-${RUNTIME}-${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
const ms = (x: number): string => `${Math.round(x)} ms`;
const LOST = { name: "LockLostError", lockLost: true };

test("pause: after a SIGSTOP past the loss deadline, the first reading says lost, while another client holds", async () => {
  const key = newKey("pause");
  const child = startChild("pause", key);
  await child.next((l) => l.ev === "holding");
  const s = server as DflockdServer;
  const contender = await RawConn.open(s.host, s.port);
  let grantedAfter: number;
  try {
    signal(child.proc, "SIGSTOP");
    const stoppedAt = performance.now();
    // Granted once the server has let the stopped child's lease go (its lease, then the sweep).
    const grant = await contender.request("l", key, `${4 * LEASE_S + 5} 60`);
    expect(grant.line, "the contender's blocking acquire").toMatch(/^ok /);
    grantedAfter = grant.arrivedAt - stoppedAt;
    // Keep the child stopped for one more round trip on the server, then let it go on.
    await contender.request("stats", "_", "");
    signal(child.proc, "SIGCONT");
    expect(await child.ended, child.stderr()).toBe(0);
  } finally {
    signal(child.proc, "SIGCONT");
    contender.close(); // the contender held the key until the child had finished
  }

  const samples = child.lines.filter((l) => l.ev === "s");
  const pauseAt = samples.findIndex((l) => (l.gap as number) > (LEASE_S * 1000) / 2);
  expect(pauseAt, "the child saw no pause in its samples").toBeGreaterThan(0);
  expect(samples[0]?.held, "the child's first sample, before the pause").toBe(true);
  const after = samples.slice(pauseAt);
  const first = after[0] as Line;
  const resumedAt = first.t as number;
  const stale = after.filter((l) => l.held === true || l.state === "held" || l.state === "renewing");
  const lastStale = stale[stale.length - 1];
  // The child writes a loss when told, so a loss told while the first sample was taken comes before it.
  const firstIndex = child.lines.indexOf(first);
  const lossIndex = child.lines.findIndex(
    (l, i) => l.ev === "lost" && i > child.lines.indexOf(samples[pauseAt - 1] as Line),
  );
  const loss = child.lines[lossIndex];
  const told =
    loss === undefined
      ? "never"
      : lossIndex < firstIndex
        ? `by ${loss.how} while the first sample was taken`
        : `by ${loss.how} ${ms((loss.t as number) - resumedAt)} after the first sample`;
  console.log(
    `${label} pause: stopped ${ms(first.gap as number)} (contender granted ${ms(grantedAfter)} after SIGSTOP); ` +
      `after it: ${after.length} samples, ${stale.length} stale` +
      (lastStale === undefined ? "" : ` (the last ${ms((lastStale.t as number) - resumedAt)} after the first)`) +
      `; first: state ${first.state}, held ${first.held}, signal ${first.aborted ? "aborted" : "not aborted"}; ` +
      `loss told ${told}`,
  );
  expect({
    staleSamples: stale.length,
    first: { state: first.state, held: first.held, aborted: first.aborted, reason: first.reason },
  }).toEqual({ staleSamples: 0, first: { state: "lost", held: false, aborted: true, reason: LOST } });
}, 60_000);

test("busy loop: past the loss deadline, held and assertHeld() say lost in the same synchronous code", async () => {
  const child = startChild("busy", newKey("busy"));
  expect(await child.ended, child.stderr()).toBe(0);
  const busy = child.lines.find((l) => l.ev === "busy");
  expect(busy, `no readings after the busy loop:\n${JSON.stringify(child.lines.at(-1))}`).toBeDefined();
  const b = busy as Line;
  const readAt = b.readAt as number;
  const a = b.a as Line;
  const bb = b.b as Line;
  // The child writes a loss when told: before its readings line if told while it read.
  const busyIndex = child.lines.indexOf(b);
  const told = (k: unknown): string => {
    const i = child.lines.findIndex((l) => l.ev === "lost" && l.how === "signal" && l.key === k);
    const l = child.lines[i];
    if (l === undefined) return "never";
    return i < busyIndex ? "during the readings" : `${ms((l.t as number) - readAt)} after them`;
  };
  console.log(
    `${label} busy loop of ${ms(readAt - (b.from as number))}: ` +
      `a read held=${a.held} state=${a.state} signal ${a.aborted ? "aborted" : "not aborted"}, assertHeld ${JSON.stringify(a.assertHeld)}; ` +
      `b read assertHeld ${JSON.stringify(bb.assertHeld)}, held=${bb.held} state=${bb.state}; ` +
      `signals aborted: a ${told(a.key)}, b ${told(bb.key)}`,
  );
  expect({
    hasAssertHeld: b.hasAssertHeld,
    a: { held: a.held, assertHeld: a.assertHeld, state: a.state, aborted: a.aborted, reason: a.reason },
    b: { assertHeld: bb.assertHeld, held: bb.held, state: bb.state, aborted: bb.aborted, reason: bb.reason },
  }).toEqual({
    hasAssertHeld: true,
    a: { held: false, assertHeld: LOST, state: "lost", aborted: true, reason: LOST },
    b: { assertHeld: LOST, held: false, state: "lost", aborted: true, reason: LOST },
  });
}, 60_000);
