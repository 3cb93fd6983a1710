// `npm run bench:inmemory`: the client's own CPU per operation, with no
// socket and no server. A `runtime` option gives every instance an in-memory
// stream that answers each request itself (`l`/`sl` with a grant, `r`/`sr`
// with `ok`, `n`/`sn` with the lease), a macrotask later, all the replies due
// in one batch (a socket would deliver each connection's reply in a callback
// of its own). What is left is the library's work per acquire + release,
// plus the stream's own (about 1 µs per operation on Node), on whichever
// runtime runs this file:
//
//   node bench/inmemory.mjs [cases] [workers] [seconds]
//   bun bench/inmemory.mjs ...       deno run -A bench/inmemory.mjs ...
//
// cases: a comma-separated list of lowlevel, dl, dl-new, dl-withlock,
// client-withlock (`client.lock(key).withLock()` per operation on one
// DflockdClient, as the README writes it) (all by default); workers: 1,10,50,1000 by default; seconds: 2 per measurement.
// Node and Bun load dist/ (npm run build first), Deno loads mod.ts.
//
// Each measurement is the median of three windows after a warm-up of 1 s. It
// prints ops/s, CPU µs per op, and runtime timers armed per op (setTimeout
// calls by the library; the stream's own batches are not counted). No server
// and no second process share the CPU, so a change to the library shows with
// less noise than a real server adds: compare two builds with this first
// (several runs each), then confirm with `npm run bench` against a real server.
import process from "node:process";
import { pathToFileURL } from "node:url";
import { cpuMicros, median } from "./common.mjs";

const RUNTIME = globalThis.Deno !== undefined ? "deno" : globalThis.Bun !== undefined ? "bun" : "node";
const MODULE = { node: "../dist/node.js", bun: "../dist/bun.js", deno: "../mod.ts" }[RUNTIME];
const [casesArg, workersArg, secondsArg] = process.argv.slice(2);
const CASES = (casesArg ?? "lowlevel,dl,dl-new,dl-withlock,client-withlock").split(",");
const WORKERS = (workersArg ?? "1,10,50,1000").split(",").map(Number);
const SECONDS = Number(secondsArg ?? 2);

// Runtime timers armed by the library (the stream's batches use the original setTimeout).
const nativeSetTimeout = globalThis.setTimeout;
let timers = 0;
globalThis.setTimeout = function counted(fn, ms, ...args) {
  timers++;
  return nativeSetTimeout(fn, ms, ...args);
};
const later = globalThis.setImmediate ?? ((fn) => nativeSetTimeout(fn, 0));

/** Every reply due, delivered in one macrotask. */
let due = [];
const deliver = () => {
  const batch = due;
  due = [];
  for (const f of batch) f();
};
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const [OK, RENEWED, ERROR] = ["ok\n", "ok 33\n", "error\n"].map((t) => encoder.encode(t));
let grants = 0;

/** A stream that answers each three-line request itself. */
class AnsweringStream {
  #handlers;
  #text = "";
  #lines = [];
  #closed = false;
  start(handlers) {
    this.#handlers = handlers;
  }
  write(bytes) {
    this.writeText(decoder.decode(bytes));
  }
  writeText(text) {
    this.#text += text;
    for (let i = this.#text.indexOf("\n"); i >= 0; i = this.#text.indexOf("\n")) {
      this.#lines.push(this.#text.slice(0, i));
      this.#text = this.#text.slice(i + 1);
    }
    while (this.#lines.length >= 3) {
      const [command] = this.#lines.splice(0, 3);
      const reply =
        command === "l" || command === "sl"
          ? encoder.encode(`ok ${(++grants).toString(16).padStart(32, "0")} 33\n`)
          : command === "n" || command === "sn"
            ? RENEWED
            : command === "r" || command === "sr"
              ? OK
              : ERROR;
      if (due.push(() => this.#closed || this.#handlers.data(reply)) === 1) later(deliver);
    }
  }
  ref() {}
  unref() {}
  close() {
    if (this.#closed) return;
    this.#closed = true;
    later(() => this.#handlers.end());
  }
}

const runtime = {
  name: "in-memory",
  connect: () => ({ result: Promise.resolve(undefined) }),
  stream: () => new AnsweringStream(),
  close() {},
  unrefTimer() {},
};

const c = await import(pathToFileURL(new URL(MODULE, import.meta.url).pathname).href);
const servers = [["127.0.0.1", 6388]];
/** The process's one DflockdClient, for the client-withlock case (made by its first worker). */
let client;
const lockOf = (i) => new c.DistributedLock({ key: `k${i}`, servers, runtime });

/** Each case: a worker's loop, `op` counting each acquire + release until `running()` is false. */
const LOOPS = {
  async lowlevel(i, running, op) {
    const conn = await c.connect({ runtime });
    while (running()) {
      const g = await c.acquire(conn, `k${i}`, 10);
      await c.release(conn, `k${i}`, g.token);
      op();
    }
    conn.close();
  },
  async dl(i, running, op) {
    const lock = lockOf(i);
    while (running()) {
      await lock.acquire();
      await lock.release();
      op();
    }
    lock.close();
  },
  async "dl-new"(i, running, op) {
    while (running()) {
      const lock = lockOf(i);
      try {
        await lock.acquire();
        await lock.release();
      } finally {
        lock.close();
      }
      op();
    }
  },
  async "client-withlock"(i, running, op) {
    client ??= new c.DflockdClient({ servers, runtime });
    while (running()) {
      await client.lock(`k${i}`).withLock(async () => {});
      op();
    }
  },
  async "dl-withlock"(i, running, op) {
    const lock = lockOf(i);
    while (running()) {
      await lock.withLock(async () => {});
      op();
    }
    lock.close();
  },
};

// Not common.mjs's sleep: its setTimeout would be counted as the library's.
const sleep = (ms) => new Promise((resolve) => nativeSetTimeout(resolve, ms));

console.log(
  `in-memory client cost on ${RUNTIME} (${MODULE}): median of 3 windows of ${SECONDS} s after 1 s of warm-up`,
);
for (const which of CASES) {
  const loop = LOOPS[which];
  if (loop === undefined) throw new Error(`unknown case ${which}; expected ${Object.keys(LOOPS).join(", ")}`);
  for (const workers of WORKERS) {
    let go = true;
    let ops = 0;
    const done = Promise.all(
      Array.from({ length: workers }, (_, i) =>
        loop(
          i,
          () => go,
          () => ops++,
        ),
      ),
    );
    await sleep(1000);
    const windows = [];
    for (let w = 0; w < 3; w++) {
      const [n0, c0, t0, k0] = [ops, cpuMicros(), performance.now(), timers];
      await sleep(SECONDS * 1000);
      const [n, us, ms, k] = [ops - n0, cpuMicros() - c0, performance.now() - t0, timers - k0];
      windows.push({ rate: (n / ms) * 1000, cpu: us / n, timers: k / n });
    }
    go = false;
    await done;
    const [rate, perOp, timersPerOp] = ["rate", "cpu", "timers"].map((f) => median(windows.map((w) => w[f])));
    console.log(
      `${which.padEnd(12)} ${String(workers).padStart(5)} workers  ${Math.round(rate)
        .toLocaleString("en-US")
        .padStart(9)} ops/s  ${perOp.toFixed(2).padStart(6)} µs CPU/op  ${timersPerOp.toFixed(3)} timers/op`,
    );
  }
}
