/**
 * The TLS handshakes of the server's listener of the runtime under test (see
 * listen.test.ts): timeouts, Listening.close() during a handshake, a client
 * that does not speak TLS, protocol versions.
 */
import { spawn } from "node:child_process";
import type * as tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { type Peer, within } from "../support/listen-peers.ts";
import { cleanUp, dial, start } from "../support/listen-setup.ts";
import { RUNTIME } from "../support/runtime.ts";

afterEach(cleanUp);

describe(`the ${RUNTIME} TLS listener's handshakes`, () => {
  /** A TCP client that never sends a ClientHello. */
  function silent(port: number): Peer {
    return dial(port, false);
  }

  it("drops a client that does not handshake within handshakeTimeoutMs, without calling accept", async () => {
    const server = await start({ tls: true, handshakeTimeoutMs: 400 });
    const t0 = performance.now();
    const peer = silent(server.port);
    await within(peer.gone.promise, 5_000, "the silent client being dropped");
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(350);
    expect(peer.received).toBe(0);
    expect(server.sides).toHaveLength(0);
  });

  it("Listening.close() drops clients still in their handshake, not the ones past it", async () => {
    const server = await start({ tls: true, handshakeTimeoutMs: 60_000 });
    const stuck = silent(server.port);
    await stuck.connected.promise;
    // Connections are accepted in arrival order: once this one is handed
    // over, the silent one has been accepted and is in its handshake.
    const done = dial(server.port, true);
    const side = await server.next();
    await done.connected.promise;
    await server.listening.close();
    await within(stuck.gone.promise, 5_000, "the silent client being dropped");
    done.sock.write("after\n");
    await side.bytes(6);
    side.conn.write(new TextEncoder().encode("ok\n"));
    await done.bytes(3);
    expect(done.text()).toBe("ok\n");
    expect(server.sides).toHaveLength(1);
  });

  it("drops a client that sends something other than a ClientHello, without calling accept", async () => {
    const server = await start({ tls: true });
    const peer = dial(server.port, false);
    await peer.connected.promise;
    peer.sock.write("l key 10\n");
    await within(peer.gone.promise, 5_000, "the client being dropped");
    expect(server.sides).toHaveLength(0);
  });

  it("negotiates TLS 1.2 or 1.3 and refuses TLS 1.1", async () => {
    const server = await start({ tls: true });
    const peer = dial(server.port, true);
    await peer.connected.promise;
    expect(["TLSv1.2", "TLSv1.3"]).toContain((peer.sock as tls.TLSSocket).getProtocol());
    // openssl's client, which can still speak TLS 1.1 (at security level 0).
    const s_client = (version: string) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(
          "openssl",
          ["s_client", version, "-cipher", "DEFAULT@SECLEVEL=0", "-connect", `127.0.0.1:${server.port}`],
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        let out = "";
        child.stdout.on("data", (b: Buffer) => {
          out += b.toString();
        });
        child.on("error", reject);
        child.on("close", () => resolve(out));
      });
    expect(await s_client("-tls1_2")).toMatch(/Cipher is (?!\(NONE\))/);
    expect(await s_client("-tls1_1")).toMatch(/Cipher is \(NONE\)/);
  });
});
