/**
 * The Node adapter over real loopback TCP, against a *scripted fake server*:
 * a few lines of node:net that send exactly the bytes each test needs. It is
 * used only for what a real dflockd cannot be made to do (bytes split at
 * chosen places, malformed replies, stalls); everything else is tested
 * against a real dflockd in test/integration.
 */
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  acquire,
  ConnectionError,
  connect,
  DistributedLock,
  ProtocolError,
  release,
  stats,
} from "../../adapters/node/index.ts";
import { nodeRuntime } from "../../adapters/node/transport.ts";

const TOKEN = "0123456789abcdef0123456789abcdef";

interface Scripted {
  port: number;
  sockets: net.Socket[];
  received: () => string;
  close: () => Promise<void>;
}

/** Start a scripted server; `onRequest` gets each complete 3-line request and the socket. */
async function scripted(onRequest: (req: string[], sock: net.Socket) => void): Promise<Scripted> {
  const sockets: net.Socket[] = [];
  let all = "";
  const server = net.createServer((sock) => {
    sockets.push(sock);
    sock.setNoDelay(true);
    let buf = "";
    sock.on("error", () => {});
    sock.on("data", (d) => {
      all += d.toString();
      buf += d.toString();
      for (;;) {
        const lines = buf.split("\n");
        if (lines.length < 4) break;
        const req = lines.slice(0, 3);
        buf = lines.slice(3).join("\n");
        onRequest(req, sock);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sockets,
    received: () => all,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

let servers: Scripted[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
async function fake(onRequest: (req: string[], sock: net.Socket) => void): Promise<Scripted> {
  const s = await scripted(onRequest);
  servers.push(s);
  return s;
}

/** Write `text` one byte per TCP segment (as far as the OS allows). */
async function trickle(sock: net.Socket, text: string): Promise<void> {
  for (const byte of Buffer.from(text)) {
    await new Promise<void>((r) => sock.write(Buffer.from([byte]), () => r()));
    await new Promise((r) => setImmediate(r));
  }
}

describe("Node adapter over TCP (scripted fake server)", () => {
  it("decodes replies sent one byte at a time, including multi-byte characters", async () => {
    const srv = await fake((req, sock) => {
      if (req[0] === "stats") {
        void trickle(
          sock,
          'ok {"connections":1,"locks":[{"key":"ключ🔒","owner_conn_id":1,"lease_expires_in_s":3,"waiters":0}],"semaphores":null,"idle_locks":null,"idle_semaphores":null}\r\n',
        );
      }
    });
    const s = await stats({ port: srv.port });
    expect(s.locks[0]?.key).toBe("ключ🔒");
    expect(s.semaphores).toEqual([]);
  });

  it("a malformed reply fails the request with a ProtocolError and closes the socket", async () => {
    const srv = await fake((_req, sock) => sock.write("ok not-a-lease\n"));
    const lock = new DistributedLock({ key: "k", port: srv.port });
    await expect(lock.acquire()).rejects.toBeInstanceOf(ProtocolError);
    expect(lock.state).toBe("released");
    await new Promise<void>((r) => (srv.sockets[0]?.destroyed ? r() : srv.sockets[0]?.once("close", () => r())));
    expect(srv.sockets[0]?.destroyed).toBe(true);
  });

  it("release() is bounded when the server stalls, and closes the socket", async () => {
    const srv = await fake((req, sock) => {
      if (req[0] === "l") sock.write(`ok ${TOKEN} 30\n`);
      // never answers "r"
    });
    const lock = new DistributedLock({ key: "k", port: srv.port, requestTimeoutMs: 300 });
    expect(await lock.acquire()).toBe(true);
    const t0 = performance.now();
    const err = await lock.release().catch((e: unknown) => e);
    const took = performance.now() - t0;
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).code).toBe("TIMEOUT");
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    expect(lock.state).toBe("released");
  });

  it("a server that hangs up while a lock is held marks it lost", async () => {
    const srv = await fake((req, sock) => {
      if (req[0] === "l") {
        sock.write(`ok ${TOKEN} 30\n`);
        setImmediate(() => sock.destroy());
      }
    });
    const lost = new Promise<Error>((resolve) => {
      void new DistributedLock({ key: "k", port: srv.port, onLost: resolve }).acquire();
    });
    expect((await lost).name).toBe("LockLostError");
  });

  it("low-level functions adopt a plain net.Socket and pipeline requests in order", async () => {
    const srv = await fake((req, sock) => {
      if (req[0] === "l") sock.write(`ok ${req[1] === "a" ? TOKEN : TOKEN.replace("0", "1")} 5\n`);
      if (req[0] === "r") sock.write("ok\n");
    });
    const sock = net.createConnection({ host: "127.0.0.1", port: srv.port });
    const [a, b] = await Promise.all([acquire(sock, "a", 1), acquire(sock, "b", 1)]);
    expect(a.token).toBe(TOKEN);
    expect(b.token).toBe(TOKEN.replace("0", "1"));
    await release(sock, "a", a.token);
    expect(srv.received()).toBe(`l\na\n1\nl\nb\n1\nr\na\n${TOKEN}\n`);
    sock.destroy();
  });

  it("stats() accepts a net.Socket and asks that socket's server", async () => {
    const srv = await fake((req, sock) => {
      if (req[0] === "stats") sock.write('ok {"connections":7,"locks":[],"semaphores":[]}\n');
    });
    const sock = net.createConnection({ host: "127.0.0.1", port: srv.port });
    expect((await stats(sock)).connections).toBe(7);
    sock.destroy();
  });

  it("bad input is rejected before a single byte is sent", async () => {
    const srv = await fake(() => {});
    const conn = await connect({ port: srv.port });
    await expect(acquire(conn, "bad key", 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(acquire(conn, "k\nl\nx", 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(release(conn, "k", "a b")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await new Promise((r) => setTimeout(r, 20));
    expect(srv.received()).toBe("");
    conn.close();
  });

  it("a refused connection is a ConnectionError carrying the system error", async () => {
    const srv = await fake(() => {});
    const port = srv.port;
    await srv.close();
    servers = [];
    const err = await connect({ port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).cause).toMatchObject({ code: "ECONNREFUSED" });
  });

  it("leaves no socket or timer behind after release", async () => {
    const srv = await fake((req, sock) => {
      if (req[0] === "l") sock.write(`ok ${TOKEN} 30\n`);
      if (req[0] === "r") sock.write("ok\n");
    });
    const before = process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length;
    const lock = new DistributedLock({ key: "k", port: srv.port });
    await lock.acquire();
    await lock.release();
    await new Promise((r) => setImmediate(r));
    const after = process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length;
    // The scripted server's own accepted socket may still be open; the client's is gone.
    expect(after).toBeLessThanOrEqual(before + 1);
    expect(nodeRuntime.name).toBe("node");
  });
});
