// One demo worker: contends for a lock and a semaphore slot, and reports each
// step as a JSON line on stdout. Usage: <runtime> worker.mjs <name> <module> <port>
const [name, modulePath, portText] = globalThis.Deno ? Deno.args : process.argv.slice(2);
const port = Number(portText);
const { DistributedLock, DistributedSemaphore } = await import(modulePath);

const say = (event, extra = {}) => console.log(JSON.stringify({ at: Date.now(), worker: name, event, ...extra }));
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

for (let round = 1; round <= 2; round++) {
  const lock = new DistributedLock({ key: "demo-lock", port, acquireTimeoutS: 20, leaseTtlS: 5 });
  say("lock: queued", { round, status: await lock.enqueue() });
  if (!(await lock.wait(20))) throw new Error("lock wait timed out");
  say("lock: HELD", { round });
  await pause(250);
  await lock.release();
  say("lock: released", { round });
}

const sem = new DistributedSemaphore({ key: "demo-sem", limit: 2, port, acquireTimeoutS: 20, leaseTtlS: 5 });
say("semaphore: waiting");
await sem.withLock(async () => {
  say("semaphore: HELD (limit 2)");
  await pause(400);
});
say("semaphore: released");
