/**
 * Messages that name the fix, through the public API against a dflockd:
 * an AuthError says which server and whether a token was sent (never the
 * token); a LIMIT_MISMATCH names the key, the server and both limits where
 * the server's stats tell them (a lock and a semaphore on one key collide
 * only before dflockd v1.14, which keeps their keys apart; each test asks
 * the server it runs against which it is); a TLS client at a plaintext server fails at
 * once, saying so. (A loss to a read timeout shorter than serverReadTimeoutS
 * is in renewal.test.ts, with the other read-timeout tests.)
 */
import * as net from "node:net";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { testCerts } from "../harness/certs.ts";
import { startDflockd } from "../harness/dflockd.ts";
import {
  AuthError,
  acquire,
  ConnectionError,
  connect,
  DflockdClient,
  DistributedLock,
  DistributedSemaphore,
  enqueue,
  LimitMismatchError,
  type LockError,
  semAcquire,
  semEnqueue,
  stats,
} from "../support/client.ts";
import { key, useDflockd } from "./helpers.ts";

const SECRET = "messages-Secret-Token-93";

/**
 * Whether the server keeps lock and semaphore keys apart: dflockd v1.14 added
 * that and `ping` together, so the server's own answer to `ping` tells (`ok`
 * from v1.14 on; `error`, the connection left open, before). Asked of the run's
 * server, real or double, whatever its version.
 */
async function keysApart(port: number): Promise<boolean> {
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write("ping\n_\n_\n"));
    s.setEncoding("utf8");
    let got = "";
    s.on("data", (d: string) => {
      got += d;
      if (got.includes("\n")) {
        s.destroy();
        resolve(got);
      }
    });
    s.once("error", reject);
  });
  if (reply !== "ok\n" && reply !== "error\n") throw new Error(`unexpected reply to ping: ${JSON.stringify(reply)}`);
  return reply === "ok\n";
}

/** Every text an error shows, its cause's included. */
function shown(err: unknown): string[] {
  const out: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    out.push(String(e), JSON.stringify(e) ?? "", inspect(e, { depth: 9, showHidden: true }));
    if (e instanceof Error) {
      out.push(e.message, e.stack ?? "");
      e = e.cause;
    } else e = undefined;
  }
  return out;
}

describe("AuthError", () => {
  const server = useDflockd(["--auth-token", SECRET]);
  const where = () => `127.0.0.1:${server().port}`;

  it("names the server and says no token was sent when the client has no auth option", async () => {
    const err = await new DistributedLock({ key: key(), servers: [server().address] }).acquire().catch((e) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(err).toMatchObject({ code: "AUTH", server: where(), tokenSent: false });
    expect((err as Error).message).toContain(where());
    expect((err as Error).message).toMatch(
      /authentication failed: the server requires an auth token and none was sent; set the auth option/,
    );
    // The low-level functions say the same of a connection opened without auth.
    const conn = await connect({ port: server().port });
    const low = await acquire(conn, key(), 0).catch((e) => e);
    conn.close();
    expect(low).toMatchObject({ code: "AUTH", server: where(), tokenSent: false });
  });

  it("names the server and says the token was refused, and shows it nowhere", async () => {
    const wrong = `${SECRET}-but-not-this-one`;
    const errors = await Promise.all([
      connect({ port: server().port, auth: wrong }).catch((e: unknown) => e),
      new DistributedLock({ key: key(), servers: [server().address], auth: wrong }).acquire().catch((e) => e),
      stats({ port: server().port, auth: wrong }).catch((e: unknown) => e),
    ]);
    for (const err of errors) {
      expect(err).toBeInstanceOf(AuthError);
      expect(err).toMatchObject({ code: "AUTH", server: where(), tokenSent: true });
      expect((err as Error).message).toContain(where());
      expect((err as Error).message).toMatch(
        /authentication failed: the server refused the auth token; check the auth option/,
      );
      for (const text of shown(err)) {
        expect(text).not.toContain(wrong);
        expect(text).not.toContain(SECRET);
      }
    }
  });

  it("the right token still works", async () => {
    expect((await stats({ port: server().port, auth: SECRET })).connections).toBeGreaterThanOrEqual(1);
  });
});

describe("an auth token for a server that takes none", () => {
  const server = useDflockd();

  it("says so, names the server, and shows not the token", async () => {
    const errors = await Promise.all([
      connect({ port: server().port, auth: SECRET }).catch((e: unknown) => e),
      new DistributedLock({ key: key(), servers: [server().address], auth: SECRET }).acquire().catch((e) => e),
    ]);
    for (const err of errors) {
      expect(err).toMatchObject({ code: "SERVER_ERROR", status: "error" });
      expect((err as Error).message).toBe(
        `127.0.0.1:${server().port} answered "error" to "auth": it takes no auth token (started without --auth-token?); leave out the auth option`,
      );
      for (const text of shown(err)) expect(text).not.toContain(SECRET);
    }
  });
});

describe("LIMIT_MISMATCH", () => {
  const server = useDflockd();
  const where = () => `127.0.0.1:${server().port}`;

  it("names the key, the server, the limit asked for and the semaphore's limit on the server", async () => {
    const k = key("sem");
    const holder = new DistributedSemaphore({ key: k, limit: 2, servers: [server().address] });
    await holder.acquire();
    const err = await new DistributedSemaphore({ key: k, limit: 3, servers: [server().address], acquireTimeoutS: 1 })
      .acquire()
      .catch((e) => e);
    await holder.release();
    expect(err).toBeInstanceOf(LimitMismatchError);
    expect(err).toMatchObject({
      code: "LIMIT_MISMATCH",
      status: "error_limit_mismatch",
      key: k,
      server: where(),
      limit: 3,
      serverLimit: 2,
    });
    const message = (err as Error).message;
    expect(message).toContain(`"${k}"`);
    expect(message).toContain(where());
    expect(message).toMatch(/asked for with limit 3, but the server has it as a semaphore with limit 2/);
  });

  it("a semaphore asked for on a lock's key, and a lock on a semaphore's key: a mismatch before v1.14, apart after", async () => {
    const apart = await keysApart(server().port);
    const k = key("lock");
    const lock = new DistributedLock({ key: k, servers: [server().address] });
    await lock.acquire();
    const sem = await new DistributedSemaphore({ key: k, limit: 4, servers: [server().address] })
      .withLock(async () => "held")
      .catch((e) => e);
    await lock.release();
    if (apart) {
      expect(sem).toBe("held"); // v1.14+: the lock and the semaphore coexist
    } else {
      expect(sem).toMatchObject({ code: "LIMIT_MISMATCH", limit: 4, serverLimit: 1 });
      expect((sem as Error).message).toMatch(/asked for with limit 4, but the server has it as a lock \(limit 1\)/);
    }

    const s = key("sem");
    const slot = new DistributedSemaphore({ key: s, limit: 5, servers: [server().address] });
    await slot.acquire();
    const asLock = new DistributedLock({ key: s, servers: [server().address] });
    const got = await asLock.acquire().catch((e) => e);
    if (got === true) await asLock.release();
    await slot.release();
    if (apart) {
      expect(got).toBe(true);
    } else {
      expect(got).toMatchObject({ code: "LIMIT_MISMATCH", limit: 1, serverLimit: 5 });
      expect((got as Error).message).toMatch(
        /asked for as a lock \(limit 1\), but the server has it as a semaphore with limit 5/,
      );
    }
  });

  it("an idle semaphore (stats show no limit) is still named, without the server's limit", async () => {
    const k = key("idle");
    await new DistributedSemaphore({ key: k, limit: 2, servers: [server().address] }).withLock(async () => {});
    const err = await new DistributedSemaphore({ key: k, limit: 3, servers: [server().address] })
      .acquire()
      .catch((e) => e);
    expect(err).toMatchObject({ code: "LIMIT_MISMATCH", key: k, limit: 3, serverLimit: undefined });
    expect((err as Error).message).toMatch(
      /with limit 3, but the server has it with another limit \(stats list a held semaphore's limit\)/,
    );
  });
});

describe("LIMIT_MISMATCH from the low-level functions", () => {
  const server = useDflockd();

  it("names the key, the limit asked for and the server (no stats are asked on the caller's connection)", async () => {
    const k = key("low");
    const conn = await connect({ port: server().port });
    try {
      await semAcquire(conn, k, 0, 2);
      const apart = await keysApart(server().port);
      const errors = await Promise.all([
        semAcquire(conn, k, 0, 3).catch((e: unknown) => e),
        semEnqueue(conn, k, 4).catch((e: unknown) => e),
        ...(apart ? [] : [acquire(conn, k, 0).catch((e: unknown) => e), enqueue(conn, k).catch((e: unknown) => e)]),
      ]);
      expect(errors.map((e) => (e as LimitMismatchError).limit)).toEqual(apart ? [3, 4] : [3, 4, 1, 1]);
      for (const err of errors) {
        expect(err).toBeInstanceOf(LimitMismatchError);
        expect(err).toMatchObject({ key: k, server: `127.0.0.1:${server().port}`, serverLimit: undefined });
        expect((err as Error).message).toContain(`"${k}" was asked for`);
      }
      if (apart) {
        // v1.14+: a lock on the semaphore's key is another resource, granted beside it.
        expect((await acquire(conn, k, 0)).token).toMatch(/^[0-9a-f]{32}$/);
        expect((await stats(conn)).locks.map((l) => l.key)).toContain(k);
      }
      // The connection is still good: a mismatch is an answer, not a broken stream.
      expect((await stats(conn)).semaphores.find((m) => m.key === k)?.limit).toBe(2);
    } finally {
      conn.close();
    }
  });
});

describe("LIMIT_MISMATCH when stats cannot be had", () => {
  // One connection for the holder, one for the asker: the stats connection is one too many.
  const server = useDflockd(["--max-connections", "2"]);

  it("falls back to a message without the server's limit, in well under the request timeout", async () => {
    const k = key("full");
    const conn = await connect({ port: server().port });
    await semAcquire(conn, k, 0, 2);
    const client = new DflockdClient({ servers: [server().address] });
    try {
      const t0 = performance.now();
      const err = await client
        .semaphore(k, 3)
        .acquire()
        .catch((e) => e);
      expect(performance.now() - t0).toBeLessThan(4_000);
      expect(err).toBeInstanceOf(LimitMismatchError);
      expect(err).toMatchObject({ key: k, limit: 3, serverLimit: undefined, server: `127.0.0.1:${server().port}` });
    } finally {
      client.close();
      conn.close();
    }
  });
});

describe("TLS at a plaintext server", () => {
  const server = useDflockd();
  const certs = testCerts();

  it("fails at once, every time, with the hint that the server does not speak TLS", async () => {
    // A ClientHello that leaves dflockd waiting for more (Deno's, before the fix) failed only after the
    // connect timeout (10 s by default); each of these tries must fail well before it.
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const err = await connect({ host: "localhost", port: server().port, tls: { ca: certs.ca } }).catch((e) => e);
      const ms = performance.now() - t0;
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as LockError).code).toBe("CONNECTION");
      expect((err as Error).message).toMatch(/does not seem to speak TLS.*leave out the tls option/);
      expect(ms).toBeLessThan(3_000);
    }
  });

  it("and TLS still works against a TLS server", async () => {
    const tlsServer = await startDflockd(["--tls-cert", certs.certFile, "--tls-key", certs.keyFile]);
    try {
      const s = await stats({ host: "localhost", port: tlsServer.port, tls: { ca: certs.ca } });
      expect(s.connections).toBeGreaterThanOrEqual(1);
    } finally {
      await tlsServer.stop();
    }
  });
});
