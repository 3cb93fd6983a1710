/**
 * The server's generations (src/server/versions.ts), spoken to on the wire:
 * each difference between `1.10` (dflockd v1.10.0, the default), `1.16` and
 * `2.1` answers as that generation does, and as the others do not, so every
 * test here fails if the version switch is ignored.
 */
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, defaultConfig, parseFlags } from "../../src/server/config.ts";
import { FencedTokens } from "../../src/server/tokens.ts";
import { type ServerVersion, startTestServer, type TestServer, type TestServerOptions } from "../../testing.ts";

/** A raw connection: one request out, one reply line back, in order. */
interface Wire {
  ask(cmd: string, key: string, arg: string): Promise<string>;
  /** The next reply line, or "<closed>" once the server has closed. */
  next(): Promise<string>;
  /** Resolves once the server has closed the connection. */
  readonly ended: Promise<void>;
  destroy(): void;
}

const started: TestServer[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

async function serve(version: ServerVersion | undefined, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({ ...options, version });
  started.push(server);
  return server;
}

async function wire(server: TestServer): Promise<Wire> {
  const s = net.connect(server.port, server.host);
  sockets.push(s);
  s.on("error", () => {});
  await new Promise((resolve) => s.once("connect", resolve));
  let buf = "";
  let closed = false;
  const waiting: ((line: string) => void)[] = [];
  const lines: string[] = [];
  const pump = (): void => {
    while (waiting.length > 0 && (lines.length > 0 || closed))
      (waiting.shift() as (l: string) => void)(lines.shift() ?? "<closed>");
  };
  s.setEncoding("utf8");
  s.on("data", (d: string) => {
    buf += d;
    for (let i = buf.indexOf("\n"); i !== -1; i = buf.indexOf("\n")) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    pump();
  });
  const ended = new Promise<void>((resolve) =>
    s.once("close", () => {
      closed = true;
      pump();
      resolve();
    }),
  );
  const next = (): Promise<string> =>
    new Promise((resolve) => {
      waiting.push(resolve);
      pump();
    });
  return {
    ask: (cmd, key, arg) => {
      s.write(`${cmd}\n${key}\n${arg}\n`);
      return next();
    },
    next,
    ended,
    destroy: () => s.destroy(),
  };
}

/** Poll `cond` every 20 ms until it holds, or fail after `ms`. */
async function until(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const NEWER: ServerVersion[] = ["1.16", "2.1"];
const waitersOn = async (server: TestServer, key: string): Promise<number | undefined> =>
  (await server.stats()).locks.find((l) => l.key === key)?.waiters;

describe("choosing a version", () => {
  it("defaults to 1.10, and --server-version or the version option picks another", () => {
    expect(defaultConfig()).toMatchObject({ version: "1.10", ping: false, namespaces: false, tokenFence: false });
    expect(parseFlags(["--server-version", "2.1"]).config).toMatchObject({
      version: "2.1",
      ping: true,
      tokenFence: true,
    });
    expect(parseFlags(["--server-version=1.16"]).config).toMatchObject({ version: "1.16", signalChannels: true });
    expect(() => parseFlags(["--server-version", "2.0"])).toThrow(
      new ConfigError('--server-version must be one of "1.10", "1.16", "2.1" (got "2.0")'),
    );
    expect(() => parseFlags(["--server-version"])).toThrow(/flag needs an argument: -server-version/);
  });

  it("startTestServer refuses a version it does not know, before listening", async () => {
    const bad = startTestServer({ version: "1.15" as ServerVersion });
    await expect(bad).rejects.toBeInstanceOf(ConfigError);
    await expect(bad).rejects.toThrow('version must be one of "1.10", "1.16", "2.1" (got "1.15")');
  });
});

describe("ping (v1.14+)", () => {
  it("1.10 answers error and keeps the connection", async () => {
    const c = await wire(await serve("1.10"));
    expect(await c.ask("ping", "_", "")).toBe("error");
    expect(await c.ask("stats", "_", "")).toMatch(/^ok \{/);
  });

  it.each(NEWER)("%s answers ok", async (v) => {
    const c = await wire(await serve(v));
    expect(await c.ask("ping", "_", "")).toBe("ok");
  });
});

describe("lock and semaphore keys (apart from v1.14)", () => {
  it("1.10: one namespace: l k and sl k 2 collide, r frees a semaphore's slot", async () => {
    const c = await wire(await serve("1.10"));
    expect(await c.ask("l", "k", "0")).toMatch(/^ok [0-9a-f]{32} 33$/);
    expect(await c.ask("sl", "k", "0 2")).toBe("error_limit_mismatch");
    const slot = (await c.ask("sl", "s", "0 2")).split(" ")[1] as string;
    expect(await c.ask("r", "s", slot)).toBe("ok");
  });

  it.each(NEWER)("%s: apart: both are held, r frees no slot, stats name the key bare", async (v) => {
    const server = await serve(v);
    const c = await wire(server);
    const lock = (await c.ask("l", "k", "0")).split(" ")[1] as string;
    const slot = (await c.ask("sl", "k", "0 2")).split(" ")[1] as string;
    expect(slot).toMatch(/^[0-9a-f]{32}$/);
    expect(await c.ask("r", "k", slot)).toBe("error");
    expect(await c.ask("sr", "k", lock)).toBe("error");
    const s = await server.stats();
    expect(s.locks.map((l) => l.key)).toEqual(["k"]);
    expect(s.semaphores.map((x) => [x.key, x.holders])).toEqual([["k", 1]]);
    expect(await c.ask("sr", "k", slot)).toBe("ok");
    expect(await c.ask("r", "k", lock)).toBe("ok");
    expect((await server.stats()).idle_semaphores.map((x) => x.key)).toEqual(["k"]);
  });
});

describe("seconds past 9223372036 (refused from v1.15)", () => {
  it("1.10 lets a timeout wrap (a free key is granted)", async () => {
    const c = await wire(await serve("1.10"));
    expect(await c.ask("l", "k", "9223372037")).toMatch(/^ok /);
  });

  it.each(NEWER)("%s refuses it, and takes 9223372036", async (v) => {
    const c = await wire(await serve(v));
    expect(await c.ask("l", "k", "9223372037")).toBe("error");
    expect(await c.ask("e", "q", "9223372037")).toBe("error");
    expect(await c.ask("l", "k", "9223372036")).toMatch(/^ok /);
  });
});

describe("auth lines (64 KiB from v1.15)", () => {
  const secret = "s".repeat(300);

  it("1.10 refuses a 300-byte token line as too long", async () => {
    const c = await wire(await serve("1.10", { authToken: secret }));
    expect(await c.ask("auth", "_", secret)).toBe("error_auth");
  });

  it.each(NEWER)("%s takes it; other lines keep the 256-byte limit", async (v) => {
    const c = await wire(await serve(v, { authToken: secret }));
    expect(await c.ask("auth", "_", secret)).toBe("ok");
    expect(await c.ask("l", "k", `0${" ".repeat(300)}`)).toBe("error");
    await c.ended; // an overlong line closes the connection
  });
});

describe("a peer that closes while blocked in l (dropped at once from v1.15)", () => {
  it.each(NEWER)("%s takes it out of the queue at once", async (v) => {
    const server = await serve(v);
    const holder = await wire(server);
    expect(await holder.ask("l", "k", "0")).toMatch(/^ok /);
    const blocked = await wire(server);
    blocked.ask("l", "k", "30").catch(() => {});
    await until(async () => (await waitersOn(server, "k")) === 1, 5_000, "the waiter");
    blocked.destroy();
    await until(async () => (await waitersOn(server, "k")) === 0, 10_000, "the waiter to leave");
  });

  it("1.10 leaves it queued until its own timeout ends", async () => {
    const server = await serve("1.10");
    const holder = await wire(server);
    expect(await holder.ask("l", "k", "0")).toMatch(/^ok /);
    const blocked = await wire(server);
    blocked.ask("l", "k", "2").catch(() => {});
    await until(async () => (await waitersOn(server, "k")) === 1, 5_000, "the waiter");
    const closedAt = Date.now();
    blocked.destroy();
    await until(async () => (await waitersOn(server, "k")) === 0, 10_000, "the wait to time out");
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(1_500);
  });
});

describe("queued waiters of a closed connection without auto-release (cleaned up from v1.15)", () => {
  async function queuedThenClosed(v: ServerVersion): Promise<number | undefined> {
    const server = await serve(v, { autoReleaseOnDisconnect: false });
    const holder = await wire(server);
    expect(await holder.ask("l", "k", "0")).toMatch(/^ok /);
    const queued = await wire(server);
    expect(await queued.ask("e", "k", "")).toBe("queued");
    queued.destroy();
    await until(async () => (await server.stats()).connections === 1, 5_000, "the connection to go");
    return waitersOn(server, "k");
  }

  it("1.10 keeps the waiter", async () => {
    expect(await queuedThenClosed("1.10")).toBe(1);
  });

  it.each(NEWER)("%s drops it, and keeps what was held", async (v) => {
    expect(await queuedThenClosed(v)).toBe(0);
  });
});

describe("a graceful shutdown (error_draining, then a close, from v1.16)", () => {
  it("1.10 serves an open connection's requests", async () => {
    const server = await serve("1.10");
    const c = await wire(server);
    expect(await c.ask("ping", "_", "")).toBe("error"); // the connection is in
    const drained = server.shutdown();
    expect(await c.ask("stats", "_", "")).toMatch(/^ok \{/);
    c.destroy();
    await drained;
  });

  it.each(NEWER)("%s: a blocked l gets error; the next request error_draining, and the close", async (v) => {
    const server = await serve(v);
    const holder = await wire(server);
    expect(await holder.ask("l", "k", "0")).toMatch(/^ok /);
    const c = await wire(server);
    const cut = c.ask("l", "k", "30");
    await until(async () => (await waitersOn(server, "k")) === 1, 5_000, "the waiter");
    const drained = server.shutdown();
    expect(await cut).toBe("error");
    expect(await c.ask("stats", "_", "")).toBe("error_draining");
    expect(await c.next()).toBe("<closed>");
    holder.destroy();
    await drained;
  });
});

describe("stats fields", () => {
  const fieldsOf = async (v: ServerVersion): Promise<string[]> => {
    const reply = await (await wire(await serve(v))).ask("stats", "_", "");
    return Object.keys(JSON.parse(reply.slice(3)));
  };
  const BASE = ["connections", "locks", "semaphores", "idle_locks", "idle_semaphores"];

  it("1.10 and 2.1 have the base fields; 1.16 adds pub/sub's signal_channels, empty", async () => {
    expect(await fieldsOf("1.10")).toEqual(BASE);
    expect(await fieldsOf("2.1")).toEqual(BASE);
    expect(await fieldsOf("1.16")).toEqual([...BASE, "signal_channels"]);
    const reply = await (await wire(await serve("1.16"))).ask("stats", "_", "");
    expect(reply.endsWith(',"signal_channels":[]}')).toBe(true);
  });
});

describe("e with junk after the lease", () => {
  it.each(["1.10", ...NEWER] as ServerVersion[])("%s refuses it", async (v) => {
    const c = await wire(await serve(v));
    expect(await c.ask("e", "k", "30 junk")).toBe("error");
    expect(await c.ask("e", "k", " 30 ")).toMatch(/^acquired [0-9a-f]{32} 30$/);
  });
});

describe("an e grant swept before w collects it", () => {
  async function sweptThenWait(v: ServerVersion): Promise<string> {
    const server = await serve(v);
    const holder = await wire(server);
    const token = (await holder.ask("l", "k", "0")).split(" ")[1] as string;
    const c = await wire(server);
    expect(await c.ask("e", "k", "1")).toBe("queued");
    expect(await holder.ask("r", "k", token)).toBe("ok"); // granted from the queue, not collected
    await until(async () => (await server.stats()).locks.length === 0, 10_000, "the sweep");
    return c.ask("w", "k", "0");
  }

  it("1.10 hands out the dead token", async () => {
    expect(await sweptThenWait("1.10")).toMatch(/^ok [0-9a-f]{32} 1$/);
  });

  it.each(NEWER)("%s has forgotten it", async (v) => {
    expect(await sweptThenWait(v)).toBe("error_not_enqueued");
  });
});

describe("the fence in the token (v2.1)", () => {
  const prefix = (reply: string): bigint => BigInt(`0x${(reply.split(" ")[1] as string).slice(0, 16)}`);
  const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
  const HOUR_NS = 3_600_000_000_000n;

  it("2.1: the first 16 hex characters rise on every grant, on any key, from the wall clock", async () => {
    const before = nowNs(); // the count starts from the wall clock as the server starts
    const c = await wire(await serve("2.1"));
    const replies = [
      await c.ask("l", "a", "0"),
      await c.ask("sl", "b", "0 3"),
      await c.ask("e", "c", ""),
      await c.ask("sl", "b", "0 3"),
    ];
    for (const r of replies) expect(r.split(" ")).toHaveLength(3); // no separate fence field
    const fences = replies.map(prefix);
    expect(fences.map((f, i) => (i === 0 ? 1n : f - (fences[i - 1] as bigint)))).toEqual([1n, 1n, 1n, 1n]);
    expect((fences[0] as bigint) > before).toBe(true);
    expect((fences[0] as bigint) - before < HOUR_NS).toBe(true);
  });

  it.each(["1.10", "1.16"] as ServerVersion[])("%s: tokens are random, no fence", async (v) => {
    const c = await wire(await serve(v));
    const reply = await c.ask("l", "a", "0");
    expect(reply.split(" ")).toHaveLength(3);
    const distance = prefix(reply) - nowNs();
    expect(distance > HOUR_NS || distance < -HOUR_NS).toBe(true);
  });
});

describe("FencedTokens", () => {
  it("writes the count as 16 hex digits, big-endian, then 16 random ones, and wraps as a uint64", () => {
    const t = new FencedTokens(0xfffffffffffffffdn);
    const [a, b, c] = [t.next(), t.next(), t.next()];
    expect(a).toMatch(/^fffffffffffffffe[0-9a-f]{16}$/);
    expect(b).toMatch(/^ffffffffffffffff[0-9a-f]{16}$/);
    expect(c).toMatch(/^0000000000000000[0-9a-f]{16}$/);
    expect(new FencedTokens(41n).next().slice(0, 16)).toBe("000000000000002a");
  });
});
