/**
 * One instance shared by concurrent callers, against a dflockd: withLock()
 * turns, hold() with `await using`, hooks, and errors that name the server.
 */
import * as net from "node:net";
import { describe, expect, it } from "vitest";
import { DistributedLock, type LockHooks, ProtocolError, stats } from "../support/client.ts";
import { key, useDflockd } from "./helpers.ts";

const server = useDflockd();
const at = () => ({ servers: [server().address] });
const where = () => ({ host: server().host, port: server().port });

describe("one instance, many callers", () => {
  it("concurrent withLock() calls take turns and never overlap, in call order", async () => {
    const lock = new DistributedLock({ key: key(), ...at() });
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        lock.withLock(async () => {
          inside++;
          most = Math.max(most, inside);
          order.push(i);
          // The server sees it held by this instance's connection.
          const held = (await stats(where())).locks.filter((l) => l.key === lock.key);
          expect(held).toHaveLength(1);
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(lock.state).toBe("released");
  });

  it("hold() with await using releases at the end of the scope, on the server too", async () => {
    const lock = new DistributedLock({ key: key(), leaseTtlS: 20, ...at() });
    const seenInside = await (async () => {
      await using held = await lock.hold({ timeoutS: 5 });
      expect(held.leaseTtl).toBe(20);
      return (await stats(where())).locks.some((l) => l.key === lock.key);
    })();
    expect(seenInside).toBe(true);
    expect(lock.state).toBe("released");
    const other = new DistributedLock({ key: lock.key, acquireTimeoutS: 0, ...at() });
    expect(await other.acquire()).toBe(true);
    await other.release();
  });

  it("hooks see acquired and released, with the server's address", async () => {
    const log: string[] = [];
    const hooks: LockHooks = {
      acquired: (e) => log.push(`acquired ${e.server}`),
      released: (e) => log.push(`released ${e.server}`),
    };
    const lock = new DistributedLock({ key: key(), hooks, ...at() });
    await lock.withLock(() => {});
    const { host, port } = where();
    expect(log).toEqual([`acquired ${host}:${port}`, `released ${host}:${port}`]);
    expect(lock.server).toBe(`${host}:${port}`);
  });
});

describe("the wrong server (a scripted fake HTTP server, not dflockd)", () => {
  it("an HTTP server where dflockd should be: a ProtocolError that says so", async () => {
    const http = net.createServer((sock) => {
      sock.on("data", () => sock.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
      sock.on("error", () => {});
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const port = (http.address() as net.AddressInfo).port;
    try {
      const lock = new DistributedLock({ key: key(), servers: [["127.0.0.1", port]] });
      const err = await lock.acquire().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as Error).message).toMatch(new RegExp(`^127\\.0\\.0\\.1:${port}: .*not a dflockd reply`));
    } finally {
      http.close();
    }
  });
});
