// One benchmark run in the current runtime. Usage: <runtime> worker.mjs <module> <port>
// Prints one JSON line: operations per second for each case.
const args = globalThis.Deno ? Deno.args : process.argv.slice(2);
const [modulePath, portText] = args;
const port = Number(portText);
const c = await import(modulePath);

async function rate(name, seconds, fn) {
  // Warm up, then count whole operations in the time budget.
  for (let i = 0; i < 50; i++) await fn();
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < end) {
    await fn();
    n++;
  }
  return [name, n / ((performance.now() - t0) / 1000)];
}

const conn = await c.connect({ port });
const results = [];
results.push(
  await rate("low-level acquire+release, sequential", 1.5, async () => {
    const g = await c.acquire(conn, "bench", 1);
    await c.release(conn, "bench", g.token);
  }),
);
results.push(
  await rate("low-level acquire+release, 32 pipelined (per pair)", 1.5, async () => {
    const grants = await Promise.all(Array.from({ length: 32 }, (_, i) => c.acquire(conn, `b${i}`, 1)));
    await Promise.all(grants.map((g, i) => c.release(conn, `b${i}`, g.token)));
  }).then(([n, r]) => [n, r * 32]),
);
results.push(
  await rate("DistributedLock acquire+release (new connection each)", 1.5, async () => {
    const lock = new c.DistributedLock({ key: "bench-lock", port });
    await lock.acquire();
    await lock.release();
  }),
);
conn.close();
console.log(JSON.stringify(Object.fromEntries(results)));
