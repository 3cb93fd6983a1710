/**
 * The holder of the shared-connection trial (shared-trial.ts): a child
 * process of the runtime under test, using the public API as an application
 * would. One `DflockdClient`, default pool settings, `<locks>` locks taken one
 * after another: the first 8 each get a connection of their own (the pool's
 * default), the next join the 8th, up to 64 holdings on it.
 *
 * For every holding it records when it was told of a loss, through each of
 * the three ways a holder is told (its `signal` aborting, `onLost`,
 * `hooks.lost`), on its own `performance.now()`; the parent maps those times
 * onto its clock with the `ping`s below. The records are written after the
 * current task (a `setTimeout` 0), never from inside a callback, so that
 * reporting does not lengthen the client's own work. What does lengthen it is
 * what an application does: its `onLost` logs the loss, with the error, to
 * stderr (a file). Without that, the client's own work between closing a
 * connection and telling its last holding is 1-3 ms, about as long as this
 * machine's other processes take to notice the close, and a trial caught
 * the close-first order in only half to four fifths of the runs.
 *
 * Args: `<host> <port> <locks> <lease s> <key prefix>`. Lines on stdin:
 * `ping` (answered `{"t":"pong","now":…}`), `go` (take the locks; answered
 * `{"t":"held","keys":[…]}` or `{"t":"error",…}`), `end` (answered with the
 * final state of every lost holding, `{"t":"final",…}`; then the client is
 * closed and the process exits). Tell records: `{"t":"told",…}`.
 */
import process from "node:process";

import { DflockdClient, type DistributedLock } from "../../mod.ts";

/** The three ways a holder is told. */
export type Channel = "signal" | "onLost" | "hook";

/** How one holding was told of its loss (times: this process's `performance.now()`). */
export interface ToldRecord {
  readonly t: "told";
  readonly key: string;
  /** When each way told it. */
  readonly at: Partial<Record<Channel, number>>;
  /** The lock's `state` when first told. */
  readonly state: string;
  /** The loss's message, from `onLost`. */
  reason?: string;
}

/** A holding's state when the parent ends the trial. */
export interface FinalRecord {
  readonly key: string;
  readonly state: string;
  readonly aborted: boolean;
}

/** Everything this process writes, one JSON object a line. */
export type HolderMessage =
  | { readonly t: "pong"; readonly now: number }
  | { readonly t: "held"; readonly keys: string[] }
  | { readonly t: "error"; readonly message: string }
  | ToldRecord
  | { readonly t: "final"; readonly holdings: FinalRecord[] };

const send = (m: HolderMessage): void => {
  process.stdout.write(`${JSON.stringify(m)}\n`);
};

const [host, port, count, leaseS, prefix] = process.argv.slice(2) as [string, string, string, string, string];
const client = new DflockdClient({ servers: [[host, Number(port)]], leaseTtlS: Number(leaseS) });
const locks = new Map<string, { lock: DistributedLock; signal: AbortSignal | undefined }>();
const told = new Map<string, ToldRecord>();
const changed = new Set<ToldRecord>();
let flushing = false;

function tell(key: string, channel: Channel, reason?: string): void {
  const at = performance.now();
  let rec = told.get(key);
  if (rec === undefined) {
    rec = { t: "told", key, at: {}, state: locks.get(key)?.lock.state ?? "unknown" };
    told.set(key, rec);
  }
  rec.at[channel] ??= at;
  if (reason !== undefined) rec.reason ??= reason;
  changed.add(rec);
  if (flushing) return;
  flushing = true;
  setTimeout(() => {
    flushing = false;
    for (const r of changed) send(r);
    changed.clear();
  }, 0);
}

async function take(): Promise<void> {
  for (let i = 0; i < Number(count); i++) {
    const key = `${prefix}-${i}`;
    const lock = client.lock(key, {
      onLost: (err) => {
        tell(key, "onLost", err.message);
        // What an application does when it loses a lock: log it, with the error (stack and cause).
        console.error(`${new Date().toISOString()} lost the lock ${key}:`, err);
      },
      hooks: { lost: () => tell(key, "hook") },
    });
    if (!(await lock.acquire())) throw new Error(`${key}: acquire() timed out`);
    const signal = lock.signal;
    signal?.addEventListener("abort", () => tell(key, "signal"), { once: true });
    locks.set(key, { lock, signal });
  }
  send({ t: "held", keys: [...locks.keys()] });
}

function end(): void {
  const holdings: FinalRecord[] = [];
  for (const [key, { lock, signal }] of locks) {
    if (told.has(key)) holdings.push({ key, state: lock.state, aborted: signal?.aborted === true });
  }
  client.close();
  process.stdout.write(`${JSON.stringify({ t: "final", holdings })}\n`, () => process.exit(0));
}

let buf = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d: string) => {
  buf += d;
  for (let nl = buf.indexOf("\n"); nl !== -1; nl = buf.indexOf("\n")) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    if (line === "ping") send({ t: "pong", now: performance.now() });
    else if (line === "go") take().catch((err: unknown) => send({ t: "error", message: String(err) }));
    else if (line === "end") end();
  }
});
// The parent went away: nothing more to do.
process.stdin.on("end", () => process.exit(1));
