/**
 * The fault proxy itself, against a local echo server: delayed chunks keep
 * their order, a cut-off forwards nothing and closes nothing, and a restore
 * delivers what was held back.
 */
import * as net from "node:net";
import { afterEach, expect, test } from "vitest";
import { type FaultProxy, startProxy } from "./proxy.ts";
import { sleep } from "./raw.ts";
import { seededRng } from "./trial.ts";

let echo: net.Server | undefined;
let proxy: FaultProxy | undefined;
let client: net.Socket | undefined;

afterEach(async () => {
  client?.destroy();
  await proxy?.close();
  await new Promise<void>((resolve) => (echo ? echo.close(() => resolve()) : resolve()));
  echo = undefined;
  proxy = undefined;
  client = undefined;
});

async function setUp(): Promise<{ received: () => string; closed: () => boolean; dropServerSide: () => void }> {
  const sockets: net.Socket[] = [];
  echo = net.createServer((s) => {
    sockets.push(s);
    s.on("error", () => {});
    s.on("data", (b: Uint8Array) => s.write(b));
  });
  await new Promise<void>((resolve) => echo?.listen(0, "127.0.0.1", () => resolve()));
  const addr = echo.address() as net.AddressInfo;
  proxy = await startProxy({ port: addr.port });
  const c = net.connect({ host: "127.0.0.1", port: proxy.port });
  client = c;
  await new Promise<void>((resolve) => c.once("connect", () => resolve()));
  let got = "";
  let closed = false;
  c.on("data", (b: Uint8Array) => {
    got += Buffer.from(b).toString();
  });
  c.on("error", () => {});
  c.on("close", () => {
    closed = true;
  });
  return {
    received: () => got,
    closed: () => closed,
    dropServerSide: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await sleep(5);
  return cond();
}

test("random per-chunk delays keep the byte order", async () => {
  const { received } = await setUp();
  const rng = seededRng(7);
  proxy?.setDelay("down", () => rng() * 40);
  proxy?.setDelay("up", () => rng() * 20);
  let sent = "";
  for (let i = 0; i < 40; i++) {
    const piece = `${i};`;
    sent += piece;
    client?.write(piece);
    await sleep(1);
  }
  expect(await until(() => received().length === sent.length, 5_000)).toBe(true);
  expect(received()).toBe(sent);
});

test("a delay holds a chunk back at least that long", async () => {
  const { received } = await setUp();
  proxy?.setDelay("down", () => 150);
  const t0 = performance.now();
  client?.write("x");
  expect(await until(() => received() === "x", 5_000)).toBe(true);
  expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
});

test("cut off: nothing either way and nothing closed; restore delivers the held bytes in order", async () => {
  const { received, closed } = await setUp();
  client?.write("a");
  expect(await until(() => received() === "a", 5_000)).toBe(true);
  proxy?.cut();
  client?.write("b");
  client?.write("c");
  await sleep(150);
  expect(received()).toBe("a");
  expect(closed()).toBe(false);
  expect(proxy?.connections()).toBe(1);
  proxy?.restore();
  expect(await until(() => received() === "abc", 5_000)).toBe(true);
});

test("a server-side close reaches the client behind the data before it", async () => {
  const { received, closed, dropServerSide } = await setUp();
  proxy?.setDelay("down", () => 80);
  client?.write("bye");
  await sleep(20); // the echo is in the proxy, held back
  dropServerSide();
  expect(await until(closed, 5_000)).toBe(true);
  expect(received()).toBe("bye");
});

test("hang up: what is held back is dropped, and the client gets an end of stream at once", async () => {
  const { received, closed } = await setUp();
  client?.write("a");
  expect(await until(() => received() === "a", 5_000)).toBe(true);
  proxy?.setDelay("down", () => 60_000);
  const echoed = new Promise<void>((resolve) =>
    proxy?.observe((e) => {
      if (e.direction === "down" && e.chunk !== undefined) resolve();
    }),
  );
  client?.write("b");
  await echoed; // the echo of "b" is in the proxy, held back
  proxy?.hangUp();
  expect(await until(closed, 5_000)).toBe(true);
  expect(received()).toBe("a");
});
