/**
 * One worker of the mutex soak (mutex-soak.ts): until its end time, take the
 * lock, then record entry and exit in the shared log file, and bump a shared
 * counter by read-sleep-write. Two holders at once would lose an increment or
 * interleave entries. Args: `<entry module> <host> <port> <key> <counter file> <log file> <end (epoch ms)> <name>`.
 */
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";

const [entry, host, port, key, counterFile, logFile, endAt, name] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
];
const { DistributedLock } = (await import(entry)) as typeof import("../../mod.ts");
const lock = new DistributedLock({ key, servers: [[host, Number(port)]], leaseTtlS: 1, acquireTimeoutS: 30 });
let entries = 0;
while (Date.now() < Number(endAt)) {
  await lock.withLock(async (signal) => {
    appendFileSync(logFile, `${name} in ${Date.now()}\n`);
    const n = Number(readFileSync(counterFile, "utf8"));
    // Hold for 0-30 ms, now and then past a renewal (the lease is 1 s).
    const hold = Math.random() < 0.05 ? 600 + Math.random() * 800 : Math.random() * 30;
    await new Promise((r) => setTimeout(r, hold));
    if (signal.aborted) throw new Error(`${name}: lock lost while held`);
    writeFileSync(counterFile, String(n + 1));
    appendFileSync(logFile, `${name} out ${Date.now()}\n`);
  });
  entries++;
}
console.log(JSON.stringify({ name, entries }));
