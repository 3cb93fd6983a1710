/**
 * One worker of the mutex soak (mutex-soak.ts): until its end time, take the
 * lock, then record entry and exit in the shared log file, and bump a shared
 * counter by read-sleep-write. Two holders at once would lose an increment or
 * interleave entries. Args: `<entry module> <host> <port> <key> <counter file> <log file> <end (epoch ms)> <name>
 * [locks per process]`: with more than one, that many instances in the process contend for the key too, while
 * one more lock on a key of the process's own is held throughout (so connections are shared).
 */
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";

const [entry, host, port, key, counterFile, logFile, endAt, name, perProcess] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string | undefined,
];
const { DistributedLock } = (await import(entry)) as typeof import("../../mod.ts");
const servers: Array<[string, number]> = [[host, Number(port)]];
const count = Number(perProcess ?? 1);
// With several locks per process, one more lock on a key of this process's own
// is held throughout, so the soak key's attempts meet a shared connection first.
const filler = count > 1 ? new DistributedLock({ key: `${key}-filler-${name}`, servers, leaseTtlS: 1 }) : undefined;
if (filler !== undefined && !(await filler.acquire())) throw new Error(`${name}: no filler lock`);

async function loop(who: string): Promise<number> {
  const lock = new DistributedLock({ key, servers, leaseTtlS: 1, acquireTimeoutS: 30 });
  let entries = 0;
  while (Date.now() < Number(endAt)) {
    await lock.withLock(async (signal) => {
      appendFileSync(logFile, `${who} in ${Date.now()}\n`);
      const n = Number(readFileSync(counterFile, "utf8"));
      // Hold for 0-30 ms, now and then past a renewal (the lease is 1 s).
      const hold = Math.random() < 0.05 ? 600 + Math.random() * 800 : Math.random() * 30;
      await new Promise((r) => setTimeout(r, hold));
      if (signal.aborted) throw new Error(`${who}: lock lost while held`);
      writeFileSync(counterFile, String(n + 1));
      appendFileSync(logFile, `${who} out ${Date.now()}\n`);
    });
    entries++;
  }
  return entries;
}

const counts = await Promise.all(Array.from({ length: count }, (_, j) => loop(count > 1 ? `${name}.${j}` : name)));
if (filler !== undefined) {
  if (!filler.held) throw new Error(`${name}: the filler lock was lost`);
  await filler.release();
}
console.log(JSON.stringify({ name, entries: counts.reduce((a, b) => a + b, 0) }));
