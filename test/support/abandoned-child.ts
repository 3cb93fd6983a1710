/**
 * The child process of test/integration/abandoned.test.ts, run by the runtime
 * under test with its garbage collector exposed (Node `--expose-gc`, Deno
 * `--v8-flags=--expose-gc`, Bun's own `Bun.gc`). Against the server at
 * `argv[2]:argv[3]`, with keys prefixed `argv[4]`, it holds locks and drops
 * what it keeps for some of them:
 *
 * - `drop-lock`, `drop-sem`: the instance of an `acquire()`, dropped;
 * - `drop-held`: the `HeldLock` of a `hold()`, dropped (its instance kept);
 * - `drop-all-a`, `drop-all-b`: the `HeldLocks` of a client's `holdAll()`, dropped;
 * - `keep`: the instance kept;
 * - `released`: released, then dropped;
 * - `with-lock`: the instance of a `withLock()` still running, dropped;
 * - `self`: an instance its own `onLost` refers to (the client keeps that
 *   callback while it holds, so the instance cannot be collected: no warning
 *   can come, as none could if the client kept any instance alive);
 * - `lost-held`: the `HeldLock` of a `hold()` whose `maxHoldS` ended it,
 *   dropped unreleased after the loss (no warning: it no longer held); its
 *   instance's next `withLock()` must get the turn once it is collected.
 *
 * Every holding's lease is 2 s, so its first renewal, which tells the
 * registry of its object, comes within a second. Then it forces garbage
 * collection until the dropped holdings have been reported and that `withLock()` has settled (at most 300 rounds), a few
 * rounds more, asks the server what is still held, and prints one JSON line:
 * the `abandoned` events, the `console.warn` lines, the keys the server still
 * holds, and what that `withLock()` gave.
 */
import process from "node:process";
import { type AbandonedEvent, DflockdClient, DistributedLock, DistributedSemaphore, stats } from "../../mod.ts";

const [host = "127.0.0.1", portText = "0", prefix = "k"] = process.argv.slice(2);
const port = Number(portText);
const servers: ReadonlyArray<readonly [string, number]> = [[host, port]];

const events: AbandonedEvent[] = [];
const warnings: string[] = [];
console.warn = (...args: unknown[]): void => {
  warnings.push(args.map(String).join(" "));
};
const hooks = {
  abandoned: (e: AbandonedEvent): void => {
    events.push(e);
  },
};
// A short lease: a holding's first renewal (before 1 s) tells the registry of its object.
const opts = { servers, hooks, leaseTtlS: 2 };
const k = (name: string): string => `${prefix}-${name}`;

/** What this script keeps alive on purpose. */
const kept: unknown[] = [];

function forceGc(): void {
  const g = globalThis as { Bun?: { gc(full: boolean): void }; gc?: () => void };
  if (g.Bun !== undefined) g.Bun.gc(true);
  else if (g.gc !== undefined) g.gc();
  else throw new Error("no garbage collector to call: run with --expose-gc");
}

// Each in a function of its own, so that nothing in this module's scope keeps what it drops.
async function dropLock(): Promise<void> {
  const lock = new DistributedLock({ key: k("drop-lock"), ...opts });
  if (!(await lock.acquire())) throw new Error("drop-lock not acquired");
}
async function dropSemaphore(): Promise<void> {
  const sem = new DistributedSemaphore({ key: k("drop-sem"), limit: 2, maxHoldS: 600, ...opts });
  if (!(await sem.acquire())) throw new Error("drop-sem not acquired");
}
async function dropHeldLock(): Promise<void> {
  const lock = new DistributedLock({ key: k("drop-held"), ...opts });
  kept.push(lock);
  await lock.hold();
}
async function dropHoldAll(): Promise<void> {
  const client = new DflockdClient(opts);
  kept.push(client);
  await client.holdAll([k("drop-all-a"), k("drop-all-b")]);
}
async function keep(): Promise<void> {
  const lock = new DistributedLock({ key: k("keep"), ...opts });
  if (!(await lock.acquire())) throw new Error("keep not acquired");
  kept.push(lock);
}
async function released(): Promise<void> {
  const lock = new DistributedLock({ key: k("released"), ...opts });
  if (!(await lock.acquire())) throw new Error("released not acquired");
  await lock.release();
}
async function selfReferencing(): Promise<void> {
  const lock: DistributedLock = new DistributedLock({ key: k("self"), ...opts, onLost: () => lock.close() });
  if (!(await lock.acquire())) throw new Error("self not acquired");
}
/** Hold `lost-held` until its maxHoldS ends it, and drop its HeldLock; returns the instance, kept. */
async function lostHeldLock(): Promise<DistributedLock> {
  let lost: () => void = () => {};
  const ended = new Promise<void>((resolve) => {
    lost = resolve;
  });
  const lock = new DistributedLock({ key: k("lost-held"), ...opts, maxHoldS: 0.2, onLost: () => lost() });
  kept.push(lock);
  await lock.hold();
  // The client's timers keep no process alive: this one does, until the loss.
  const alive = setInterval(() => {}, 1000);
  await ended;
  clearInterval(alive);
  return lock;
}
async function dropAgain(): Promise<void> {
  const lock = new DistributedLock({ key: k("drop-again"), ...opts });
  if (!(await lock.acquire())) throw new Error("drop-again not acquired");
  await lock.release();
  if (!(await lock.acquire())) throw new Error("drop-again not acquired twice");
}
async function dropReopened(): Promise<void> {
  const lock = new DistributedLock({ key: k("drop-reopened"), ...opts });
  if (!(await lock.acquire())) throw new Error("drop-reopened not acquired");
  lock.close();
  if (!(await lock.acquire())) throw new Error("drop-reopened not acquired twice");
}
async function dropWaited(): Promise<void> {
  const lock = new DistributedLock({ key: k("drop-waited"), ...opts });
  if ((await lock.enqueue()) !== "acquired") throw new Error("drop-waited not acquired");
  await lock.release();
  if ((await lock.enqueue()) !== "acquired") throw new Error("drop-waited not acquired twice");
}
async function releasedTwice(): Promise<void> {
  const lock = new DistributedLock({ key: k("released-twice"), ...opts });
  for (let i = 0; i < 2; i++) {
    if (!(await lock.acquire())) throw new Error("released-twice not acquired");
    await lock.release();
  }
}
let endWithLock: () => void = () => {};
function duringWithLock(): Promise<void> {
  return new Promise<void>((started) => {
    const running = new DistributedLock({ key: k("with-lock"), ...opts }).withLock(
      () =>
        new Promise<void>((end) => {
          endWithLock = end;
          started();
        }),
    );
    kept.push(running);
  });
}

await dropLock();
await dropSemaphore();
await dropHeldLock();
await dropHoldAll();
await keep();
await released();
await selfReferencing();
await duringWithLock();
await dropAgain();
await dropReopened();
await dropWaited();
await releasedTwice();
const lostHeld = await lostHeldLock();
let afterLoss: string | undefined;
void lostHeld
  .withLock(() => "ran", { timeoutS: 20 })
  .then(
    (r) => {
      afterLoss = r;
    },
    (e: unknown) => {
      afterLoss = String(e);
    },
  );

const DROPPED = 8;
let rounds = 0;
for (let extra = 0; rounds < 300 && extra < 5; rounds++) {
  forceGc();
  // A fresh task: the registry's callbacks run, and no stack slot of the code above is left to scan.
  await new Promise((r) => setTimeout(r, 10));
  if (events.length >= DROPPED && afterLoss !== undefined) extra++;
}
endWithLock();
await Promise.all(kept.filter((x): x is Promise<unknown> => x instanceof Promise));
const now = await stats({ host, port });
const held = [...now.locks.map((l) => l.key), ...now.semaphores.filter((s) => s.holders > 0).map((s) => s.key)];
process.stdout.write(`${JSON.stringify({ events, warnings, held, rounds, afterLoss })}\n`);
process.exit(0);
