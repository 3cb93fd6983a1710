/**
 * TLS and authentication through the runtime's own adapter (node:tls,
 * Bun.connect's tls, Deno.startTls/connectTls), against *scripted fake
 * servers* speaking TLS with throwaway certificates. The same cases against a
 * real dflockd (--tls-cert, --auth-token) are in test/integration.
 */
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testCerts } from "../harness/certs.ts";
import {
  AuthError,
  acquire,
  ConnectionError,
  connect,
  DistributedLock,
  DistributedSemaphore,
  InvalidArgumentError,
  LockError,
  release,
  stats,
} from "../support/client.ts";
import { RUNTIME, type ScriptedServer, scriptedServer } from "../support/runtime.ts";

const SECRET = "s3cret-Token-42";
const certs = testCerts();
const servers: ScriptedServer[] = [];
let tlsAuth: ScriptedServer;
let tlsOnly: ScriptedServer;
let plain: ScriptedServer;
let plainAuth: ScriptedServer;
let silentPlain: ScriptedServer;

beforeAll(async () => {
  const tls = { certFile: certs.certFile, keyFile: certs.keyFile };
  [tlsAuth, tlsOnly, plain, plainAuth, silentPlain] = await Promise.all([
    scriptedServer("ok", { tls, auth: SECRET }),
    scriptedServer("ok", { tls }),
    scriptedServer("ok"),
    scriptedServer("ok", { auth: SECRET }),
    scriptedServer("silent"),
  ]);
  servers.push(tlsAuth, tlsOnly, plain, plainAuth, silentPlain);
});
afterAll(() => {
  for (const s of servers) s.stop();
});

/** Run `fn`, and return what it threw plus how long it took. */
async function failure(fn: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    await fn();
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
  throw new Error("expected a failure");
}

describe(`TLS and auth on ${RUNTIME}`, () => {
  it("locks, semaphores, two-phase, stats and low-level calls work over TLS with auth", async () => {
    const opts = { port: tlsAuth.port, host: "localhost", tls: { ca: certs.ca }, auth: SECRET };
    const lock = new DistributedLock({ key: "k", ...opts });
    expect(await lock.acquire()).toBe(true);
    await lock.release();
    await new DistributedSemaphore({ key: "s", limit: 2, ...opts }).withLock(async () => {});
    const two = new DistributedLock({ key: "q", ...opts });
    expect(await two.enqueue()).toBe("queued");
    expect(await two.wait(1)).toBe(true);
    await two.release();
    expect((await stats(opts)).connections).toBe(7);
    const conn = await connect(opts);
    const g = await acquire(conn, "k", 1);
    await release(conn, "k", g.token);
    conn.close();
  });

  it("verifies against the IP address too (subjectAltName 127.0.0.1)", async () => {
    const lock = new DistributedLock({ key: "k", host: "127.0.0.1", port: tlsOnly.port, tls: { ca: certs.ca } });
    expect(await lock.acquire()).toBe(true);
    await lock.release();
  });

  it("a wrong CA fails with a ConnectionError about certificate verification", async () => {
    const { error, ms } = await failure(() =>
      connect({ host: "localhost", port: tlsOnly.port, tls: { ca: certs.otherCa }, connectTimeoutMs: 3000 }),
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/TLS handshake .* failed/);
    expect((error as Error).message).toMatch(/certificate verification failed: check tls.ca/);
    expect(ms).toBeLessThan(3000);
  });

  it("insecureSkipVerify accepts any certificate (refused up front on Deno)", async () => {
    const other = await scriptedServer("ok", {
      tls: { certFile: certs.certFile, keyFile: certs.keyFile },
      host: "127.0.0.2",
    });
    servers.push(other);
    const lock = new DistributedLock({
      key: "k",
      host: "127.0.0.2",
      port: other.port,
      tls: { insecureSkipVerify: true },
    });
    if (RUNTIME === "deno") {
      await expect(lock.acquire()).rejects.toBeInstanceOf(InvalidArgumentError);
      return;
    }
    expect(await lock.acquire()).toBe(true);
    await lock.release();
  });

  it("TLS material the runtime cannot parse is a LockError, not a bare Error", async () => {
    const badPem = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    for (const tls of [
      { ca: badPem },
      { ca: certs.ca, cert: badPem, key: badPem.replaceAll("CERTIFICATE", "PRIVATE KEY") },
    ]) {
      const err = await connect({ host: "localhost", port: tlsOnly.port, tls, connectTimeoutMs: 3000 }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LockError);
    }
  });

  it("the system CAs do not trust a private CA (tls: true)", async () => {
    const { error } = await failure(() => connect({ host: "localhost", port: tlsOnly.port, tls: true }));
    expect(error).toBeInstanceOf(ConnectionError);
  });

  it("a wrong server name fails verification", async () => {
    if (RUNTIME === "deno") {
      // Deno verifies against the host itself: asking for another name is refused up front.
      await expect(
        connect({ host: "127.0.0.1", port: tlsOnly.port, tls: { ca: certs.ca, serverName: "wrong.example" } }),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    // A host the certificate does not name fails on every runtime.
    const other = await scriptedServer("ok", {
      tls: { certFile: certs.certFile, keyFile: certs.keyFile },
      host: "127.0.0.2",
    });
    servers.push(other);
    const { error } = await failure(() => connect({ host: "127.0.0.2", port: other.port, tls: { ca: certs.ca } }));
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/certificate verification failed/);
    if (RUNTIME !== "deno") {
      const named = await failure(() =>
        connect({ host: "127.0.0.1", port: tlsOnly.port, tls: { ca: certs.ca, serverName: "wrong.example" } }),
      );
      expect(named.error).toBeInstanceOf(ConnectionError);
    }
  });

  it("a wrong secret is an AuthError, and the connection is closed", async () => {
    const { error } = await failure(() => connect({ port: plainAuth.port, auth: "not-the-secret" }));
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toBeInstanceOf(LockError);
    expect((error as AuthError).code).toBe("AUTH");
    const lock = new DistributedLock({ key: "k", port: plainAuth.port, auth: "nope" });
    await expect(lock.acquire()).rejects.toBeInstanceOf(AuthError);
    expect(lock.state).toBe("released");
  });

  it("a missing secret is an AuthError on the first command", async () => {
    await expect(new DistributedLock({ key: "k", port: plainAuth.port }).acquire()).rejects.toBeInstanceOf(AuthError);
  });

  it("a plain client at a TLS server fails quickly, saying TLS is probably needed", async () => {
    const { error, ms } = await failure(() => new DistributedLock({ key: "k", port: tlsOnly.port }).acquire());
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/tls/i);
    expect(ms).toBeLessThan(5000);
  });

  it("a TLS client at a plain server fails quickly, saying the server does not speak TLS", async () => {
    // Like dflockd, the scripted server answers "error" once a line passes 256 bytes or three lines arrived.
    // Deno's own ClientHello (240 bytes) often does neither; the ALPN name the Deno adapter offers makes every
    // ClientHello do it, so each try fails at once, long before the connect timeout (10 s by default).
    for (let i = 0; i < 3; i++) {
      const { error, ms } = await failure(() =>
        connect({ host: "localhost", port: plain.port, tls: { ca: certs.ca } }),
      );
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as Error).message).toMatch(/TLS/);
      expect((error as Error).message).toMatch(/does not (seem to )?(speak|use) TLS/);
      expect(ms).toBeLessThan(2500);
    }
  });

  it("a stalled TLS handshake fails within connectTimeoutMs", async () => {
    // The server accepts TCP and never answers the ClientHello.
    const { error, ms } = await failure(() =>
      connect({ host: "localhost", port: silentPlain.port, tls: { ca: certs.ca }, connectTimeoutMs: 400 }),
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).code).toBe("TIMEOUT");
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(2000);
  });

  it("a server that never answers auth fails within connectTimeoutMs", async () => {
    const { error, ms } = await failure(() =>
      new DistributedLock({ key: "k", port: silentPlain.port, auth: SECRET, connectTimeoutMs: 400 }).acquire(),
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).code).toBe("TIMEOUT");
    expect(ms).toBeLessThan(2000);
  });

  it("the secret never shows in JSON, inspect output, errors or stacks", async () => {
    const lock = new DistributedLock({ key: "k", port: plainAuth.port, auth: SECRET });
    const sem = new DistributedSemaphore({ key: "k", limit: 1, port: plainAuth.port, auth: SECRET });
    const shown = [
      JSON.stringify(lock),
      JSON.stringify(sem),
      inspect(lock, { showHidden: true, depth: 9 }),
      String(lock),
    ];
    if (RUNTIME === "deno") {
      const D = (globalThis as unknown as { Deno: { inspect(v: unknown, o?: object): string } }).Deno;
      shown.push(D.inspect(lock, { showHidden: true, depth: 9 }));
    }
    const errors = await Promise.all([
      connect({ port: plainAuth.port, auth: `${SECRET}x` }).catch((e: unknown) => e),
      connect({ port: silentPlain.port, auth: SECRET, connectTimeoutMs: 200 }).catch((e: unknown) => e),
      Promise.resolve()
        .then(() => new DistributedLock({ key: "k", auth: `${SECRET}\n` }))
        .catch((e: unknown) => e),
    ]);
    for (const e of errors) {
      expect(e).toBeInstanceOf(LockError);
      shown.push(String(e), (e as Error).stack ?? "", JSON.stringify(e), inspect(e, { depth: 9 }));
    }
    for (const text of shown) expect(text).not.toContain(SECRET);
    lock.close();
  });

  it("rejects bad tls and auth options before connecting", () => {
    expect(() => new DistributedLock({ key: "k", tls: { ca: "not a pem" } })).toThrow(InvalidArgumentError);
    expect(() => new DistributedLock({ key: "k", tls: { cert: certs.cert } })).toThrow(InvalidArgumentError);
    expect(() => new DistributedLock({ key: "k", tls: 3 as unknown as boolean })).toThrow(InvalidArgumentError);
    expect(() => new DistributedLock({ key: "k", auth: "" })).toThrow(InvalidArgumentError);
    expect(() => new DistributedLock({ key: "k", auth: "a\nb" })).toThrow(InvalidArgumentError);
  });
});
