/**
 * The server's listener of the runtime under test (`Bun.listen` under Bun,
 * `Deno.listen`/`Deno.listenTls` under Deno, `node:net`/`node:tls` under
 * Node), checked against the contract in src/server/listen.ts, with a plain
 * `node:net` / `node:tls` client socket as the peer. The TLS handshakes: listen-handshake.test.ts.
 */
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  concat,
  mismatch,
  pattern,
  refused,
  settled,
  signal,
  sleep,
  within,
  writeChunks,
} from "../support/listen-peers.ts";
import { cleanUp, dial, holdback, start } from "../support/listen-setup.ts";
import { RUNTIME } from "../support/runtime.ts";

const MB = 1024 * 1024;
/**
 * What the peer writes to a paused connection: more than the kernel's buffers
 * on both ends, and Deno's TLS relay, take (at most 3.5 MB went while paused, on each runtime).
 */
const PAUSE_BYTES = 16 * MB;

/**
 * How long a test watches for something that must not happen (a held-back
 * transfer going through): loopback moves tens of megabytes in that time.
 */
const HOLD_MS = 500;

afterEach(cleanUp);

describe.each([false, true])(`the ${RUNTIME} listener (TLS: %s)`, (secure) => {
  it("carries bytes both ways, whole and in order, through backpressure", async () => {
    const server = await start({ tls: secure });
    const peer = dial(server.port, secure);
    const side = await server.next();
    const up = pattern(MB, 1);
    for (let at = 0; at < up.length; at += 10_000) peer.sock.write(up.subarray(at, at + 10_000));
    // Written in one go, far more than the kernel takes before the peer (in
    // this same thread) reads: the listener must keep the rest and send it later.
    const down = pattern(16 * MB, 2);
    writeChunks(side.conn, down.subarray(0, 1_000), 100);
    writeChunks(side.conn, down.subarray(1_000), 64 * 1024);
    // Each named wait ends before the test's own timeout (30 s), so that a hang says where.
    await within(side.bytes(up.length), 12_000, "the peer's bytes");
    await within(peer.bytes(down.length), 12_000, "the server's bytes");
    expect(mismatch(concat(side.chunks), up)).toBe(-1);
    expect(mismatch(Buffer.concat(peer.chunks), down)).toBe(-1);
    expect(side.log).not.toContain("end");
  });

  it("reports the peer's FIN as end() and still delivers a reply written after it", async () => {
    const server = await start({ tls: secure });
    const peer = dial(server.port, secure);
    const side = await server.next();
    await peer.connected.promise;
    peer.sock.end("ping\n");
    await side.ended.promise;
    expect(Buffer.from(concat(side.chunks)).toString()).toBe("ping\n");
    // Reply later, after other I/O has had its turn (a listener that closes
    // after the peer's FIN would have closed by then): a round trip on another connection.
    const other = dial(server.port, secure);
    const otherSide = await server.next();
    other.sock.write("?");
    await otherSide.bytes(1);
    side.conn.write(new TextEncoder().encode("pong\n"));
    await within(peer.bytes(5), 5_000, "the reply after the peer's FIN");
    expect(peer.text()).toBe("pong\n");
    side.conn.close();
    await within(peer.ended.promise, 5_000, "the peer's EOF");
    await within(side.closed.promise, 5_000, "closed()");
    expect(side.log).toEqual(["data", "end", "closed"]);
  });

  it("close() writes everything queued first, then closes both ways", async () => {
    const server = await start({ tls: secure });
    const peer = dial(server.port, secure);
    const side = await server.next();
    await peer.connected.promise;
    peer.sock.pause(); // so that the server's queue backs up
    const sent = pattern(MB, 3);
    writeChunks(side.conn, sent, 64 * 1024);
    const before = side.log.length;
    side.conn.close();
    peer.sock.resume();
    await within(peer.ended.promise, 10_000, "the peer's EOF");
    expect(peer.received).toBe(MB);
    expect(mismatch(Buffer.concat(peer.chunks), sent)).toBe(-1);
    await within(side.closed.promise, 5_000, "closed()");
    // Reading stopped at close(): nothing more is reported but the close.
    expect(side.log.slice(before)).toEqual(["closed"]);
    // Closed both ways: what the peer sends now is refused (a half-closed socket would take it).
    await within(refused(peer), 5_000, "the peer's writes failing");
    expect(side.log.slice(before)).toEqual(["closed"]);
  });

  it("destroy() drops the connection at once, with what is still queued", async () => {
    const server = await start({ tls: secure });
    const peer = dial(server.port, secure);
    const side = await server.next();
    await peer.connected.promise;
    peer.sock.pause();
    const total = 32 * MB; // more than the kernel's buffers on both ends hold
    writeChunks(side.conn, new Uint8Array(total), MB);
    side.conn.destroy();
    await within(side.closed.promise, 5_000, "closed() after destroy()");
    peer.sock.resume();
    await within(peer.gone.promise, 5_000, "the peer seeing the connection go");
    expect(peer.received).toBeLessThan(total);
    expect(side.closedCount).toBe(1);
  });

  it("pause() holds the peer back: its kernel stops taking its bytes until resume(); then all arrive, in order", async () => {
    const server = await start({ tls: secure });
    const peer = dial(server.port, secure);
    const side = await server.next();
    await peer.connected.promise;
    // Reading is under way (a read may be pending) when pause() comes.
    peer.sock.write("x");
    await within(side.bytes(1), 5_000, "the first byte");
    side.conn.pause();
    const sent = pattern(PAUSE_BYTES, 4);
    const taken = signal();
    peer.sock.write(sent, () => taken.resolve());
    const written = settled(taken.promise);
    await sleep(HOLD_MS);
    expect(written.done).toBe(false);
    expect(side.received).toBe(1);
    side.conn.resume();
    await within(taken.promise, 10_000, "the peer's write being taken after resume()");
    await within(side.bytes(1 + sent.length), 10_000, "the peer's bytes after resume()");
    expect(mismatch(concat(side.chunks), concat([new Uint8Array([0x78]), sent]))).toBe(-1);
    expect(side.log).not.toContain("end");
  });

  it("queued counts what the OS has not taken; flushed() resolves once all is taken, or the connection is gone", async () => {
    const server = await start({ tls: secure });
    const proxy = await holdback(server.port);
    const peer = dial(proxy.port, secure);
    const side = await server.next();
    await peer.connected.promise;
    expect(side.conn.queued).toBe(0);
    await within(side.conn.flushed(), 1_000, "flushed() with nothing queued");
    proxy.hold(); // nothing is read from the server
    const total = 32 * MB; // more than the kernel's buffers on both ends (and Deno's TLS relay) hold
    const sent = pattern(total, 5);
    writeChunks(side.conn, sent, MB);
    const flushed = side.conn.flushed();
    const done = settled(flushed);
    await sleep(HOLD_MS);
    expect(done.done).toBe(false);
    const held = side.conn.queued;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(total); // the OS took some
    proxy.release();
    await within(flushed, 10_000, "flushed() once the peer reads");
    expect(side.conn.queued).toBe(0);
    await within(peer.bytes(total), 10_000, "the server's bytes");
    expect(mismatch(Buffer.concat(peer.chunks), sent)).toBe(-1);

    // A connection destroyed with bytes still queued: flushed() resolves, nothing is left queued.
    const other = dial(proxy.port, secure);
    const otherSide = await server.next();
    await other.connected.promise;
    proxy.hold();
    writeChunks(otherSide.conn, new Uint8Array(total), MB);
    const abandoned = otherSide.conn.flushed();
    await sleep(50);
    expect(settled(abandoned).done).toBe(false);
    otherSide.conn.destroy();
    await within(abandoned, 5_000, "flushed() after destroy()");
    expect(otherSide.conn.queued).toBe(0);
  });

  it("answers pipelined requests at once: no reply waits for a delayed ACK (Nagle)", async () => {
    const server = await start({ tls: secure });
    const peer = dial(server.port, secure);
    peer.sock.setNoDelay(true);
    const side = await server.next();
    await peer.connected.promise;
    // As the server answers: one write per request, each a microtask after the one before.
    let pending = "";
    side.onData = (b) => {
      pending += Buffer.from(b).toString("latin1");
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      void (async () => {
        for (const line of lines) {
          await null;
          side.conn.write(new TextEncoder().encode(`${line} done\n`));
        }
      })();
    };
    const times: number[] = [];
    for (let run = 0; run <= 20; run++) {
      const requests = [`l k${run}`, `r k${run}`, "stats"];
      const replies = requests.reduce((n, line) => n + `${line} done\n`.length, peer.received);
      const t0 = performance.now();
      peer.sock.write(requests.map((line) => `${line}\n`).join(""));
      await within(peer.bytes(replies), 1_000, "three replies");
      if (run > 0) times.push(performance.now() - t0); // the first warms up
    }
    times.sort((a, b) => a - b);
    // Nagle holding the second reply until the peer's delayed ACK costs about 40 ms a round;
    // unhindered it is well under 1 ms. The bound leaves room for a busy machine.
    expect(times[times.length >> 1]).toBeLessThan(20);
  });

  it("calls closed() once, after everything else, however often it is closed", async () => {
    const server = await start({ tls: secure });
    const a = dial(server.port, secure);
    const sideA = await server.next();
    await a.connected.promise;
    a.sock.write("x");
    await sideA.bytes(1);
    sideA.conn.close();
    sideA.conn.close();
    sideA.conn.destroy();
    sideA.conn.write(new Uint8Array([1])); // after close: dropped, not thrown
    await sideA.closed.promise;
    sideA.conn.destroy();
    sideA.conn.close();
    // The peer going first, on another connection.
    const b = dial(server.port, secure);
    const sideB = await server.next();
    await b.connected.promise;
    b.sock.destroy();
    await sideB.ended.promise;
    sideB.conn.close();
    sideB.conn.close();
    await sideB.closed.promise;
    sideB.conn.destroy();
    // A full round trip on a third connection: any late second call has had its turn.
    const c = dial(server.port, secure);
    const sideC = await server.next();
    c.sock.write("y");
    await sideC.bytes(1);
    sideC.conn.write(new Uint8Array([0x7a]));
    await c.bytes(1);
    expect(sideA.closedCount).toBe(1);
    expect(sideA.log).toEqual(["data", "closed"]);
    expect(sideB.closedCount).toBe(1);
    expect(sideB.log).toEqual(["end", "closed"]);
  });

  it("survives a peer that resets mid-write: closed(), and nothing thrown or rejected", async () => {
    const server = await start({ tls: secure });
    const peer = dial(server.port, secure);
    const side = await server.next();
    await peer.connected.promise;
    peer.sock.pause();
    writeChunks(side.conn, new Uint8Array(32 * MB), MB);
    peer.sock.destroy(); // with unread bytes: the kernel answers with a reset
    await within(side.closed.promise, 5_000, "closed() after the peer's reset");
    side.conn.write(new Uint8Array(10));
    side.conn.close();
    expect(side.closedCount).toBe(1);
  });

  it("Listening.close() frees the port at once and leaves accepted connections alone", async () => {
    const server = await start({ tls: secure });
    const old = dial(server.port, secure);
    const side = await server.next();
    await old.connected.promise;
    await server.listening.close();
    // Nothing listens: a new connection is refused.
    const probe = net.connect({ host: "127.0.0.1", port: server.port });
    const outcome = await new Promise<string>((resolve) => {
      probe.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      probe.once("connect", () => resolve("connected"));
    });
    probe.destroy();
    expect(outcome).toBe("ECONNREFUSED");
    // The same port binds again right away.
    const again = await start({ tls: secure, port: server.port });
    expect(again.port).toBe(server.port);
    const fresh = dial(again.port, secure);
    const freshSide = await again.next();
    fresh.sock.write("new\n");
    await freshSide.bytes(4);
    // The connection accepted before the close still works both ways.
    old.sock.write("old\n");
    await side.bytes(4);
    expect(Buffer.from(concat(side.chunks)).toString()).toBe("old\n");
    side.conn.write(new TextEncoder().encode("still here\n"));
    await old.bytes(11);
    expect(old.text()).toBe("still here\n");
    expect(server.sides).toHaveLength(1);
  });
});
