/**
 * The low-level functions accept a plain `net.Socket` the user
 * created (the contract's low-level example). Uses a scripted fake server.
 */
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { acquire, release, stats } from "../support/client.ts";
import { type ScriptedServer, scriptedServer } from "../support/runtime.ts";

const TOKEN = "0123456789abcdef0123456789abcdef";
let servers: ScriptedServer[] = [];
afterEach(() => {
  for (const s of servers) s.stop();
  servers = [];
});

describe("adopting a net.Socket the user created", () => {
  it("low-level functions adopt a plain net.Socket and pipeline requests in order", async () => {
    const srv = await scriptedServer("ok");
    servers.push(srv);
    const sock = net.createConnection({ host: "127.0.0.1", port: srv.port });
    const [a, b] = await Promise.all([acquire(sock, "a", 1), acquire(sock, "busy", 0).catch((e: unknown) => e)]);
    expect(a.token).toBe(TOKEN);
    expect(b).toMatchObject({ code: "ACQUIRE_TIMEOUT" });
    await release(sock, "a", a.token);
    expect((await stats(sock)).connections).toBe(7);
    sock.destroy();
  });

  it("bad input is rejected before a single byte is sent", async () => {
    const srv = await scriptedServer("ok");
    servers.push(srv);
    const sock = net.createConnection({ host: "127.0.0.1", port: srv.port });
    let sent = 0;
    const write = sock.write.bind(sock);
    sock.write = ((...args: Parameters<typeof write>) => {
      sent++;
      return write(...args);
    }) as typeof sock.write;
    await expect(acquire(sock, "bad key", 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(acquire(sock, "k\nl\nx", 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(release(sock, "k", "a b")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(sent).toBe(0);
    sock.destroy();
  });

  it("a destroyed socket fails pending requests with a ConnectionError", async () => {
    const srv = await scriptedServer("stall");
    servers.push(srv);
    const sock = net.createConnection({ host: "127.0.0.1", port: srv.port });
    const p = release(sock, "k", TOKEN).catch((e: unknown) => e);
    sock.destroy();
    expect(await p).toMatchObject({ code: "CONNECTION" });
  });
});
