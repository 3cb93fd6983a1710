import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { asConnection, type SocketLike } from "../../src/adopt.ts";
import { Connection } from "../../src/connection.ts";
import { ConnectionError, InvalidArgumentError, type LockError, ProtocolError, ServerError } from "../../src/errors.ts";
import { connect } from "../../src/open.ts";
import { encodeStats, encodeWait, parseGrantReply, parseOkReply } from "../../src/protocol.ts";
import type { ByteStream, StreamHandlers } from "../../src/transport.ts";
import { type ScriptedRuntime, token, useScriptedRuntime } from "../support/scripted-peer.ts";

let rt: ScriptedRuntime;
beforeEach(() => {
  rt = useScriptedRuntime();
});
afterEach(() => {
  vi.useRealTimers();
});

async function open(): Promise<[Connection, NonNullable<ScriptedRuntime["peers"][number]>]> {
  const conn = await connect({ host: "h", port: 1 });
  return [conn, rt.peers[rt.peers.length - 1] as NonNullable<ScriptedRuntime["peers"][number]>];
}

const grant = (l: string) => parseGrantReply(l, "w");
const ok = (l: string) => parseOkReply(l, "r");
const waitReq = encodeWait("lock", "k", 1);

describe("Connection", () => {
  it("answers pipelined requests in order, even when replies arrive in one chunk or split", async () => {
    const [conn, peer] = await open();
    const a = conn.request(waitReq, "w", grant, 5000);
    const b = conn.request(waitReq, "w", grant, 5000);
    const c = conn.request(waitReq, "w", grant, 5000);
    peer.send(`ok ${token(1)} 5\nok ${token(2)}`);
    peer.send(" 6\nti");
    peer.send("meout\n");
    expect((await a)?.token).toBe(token(1));
    expect((await b)?.token).toBe(token(2));
    expect(await c).toBeNull();
    expect(conn.pending).toBe(0);
    conn.close();
  });

  it("never gives an unsolicited reply to a later request", async () => {
    const [conn, peer] = await open();
    const closed = new Promise((r) => conn.onClose(r));
    peer.send("ok\n");
    const info = (await closed) as { error: LockError; byClient: boolean };
    expect(info.byClient).toBe(false);
    expect(info.error).toBeInstanceOf(ProtocolError);
    await expect(conn.request(waitReq, "w", grant, 5000)).rejects.toBeInstanceOf(ProtocolError);
  });

  it("reports the server's read-timeout error as a connection error", async () => {
    const [conn, peer] = await open();
    const closed = new Promise<{ error: LockError }>((r) => conn.onClose(r));
    peer.send("error\n");
    const { error } = await closed;
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.message).toMatch(/read timeout/);
    expect(peer.closedByClient).toBe(true);
  });

  it("keeps the connection open after a server error status, closes it after a malformed reply", async () => {
    const [conn, peer] = await open();
    const a = conn.request(waitReq, "w", grant, 5000);
    peer.send("error_not_enqueued\n");
    await expect(a).rejects.toMatchObject({ code: "NOT_ENQUEUED" });
    expect(conn.closed).toBe(false);
    const b = conn.request(waitReq, "w", grant, 5000);
    const c = conn.request(waitReq, "w", grant, 5000);
    peer.send("ok what\n");
    await expect(b).rejects.toBeInstanceOf(ProtocolError);
    await expect(c).rejects.toBeInstanceOf(ProtocolError);
    expect(conn.closed).toBe(true);
  });

  it("fails pending requests with the cause when the peer hangs up", async () => {
    const [conn, peer] = await open();
    const a = conn.request(waitReq, "w", grant, 5000);
    const cause = new Error("ECONNRESET");
    peer.hangUp(cause);
    const err = await a.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).cause).toBe(cause);
  });

  it("times a request from when it is next in line, then closes the connection", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const [conn, peer] = await open();
    const slow = conn.request(waitReq, "w", grant, 10_000);
    const quick = conn.request(encodeStats(), "r", ok, 1_000).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(conn.closed).toBe(false);
    peer.send("timeout\n");
    expect(await slow).toBeNull();
    await vi.advanceTimersByTimeAsync(999);
    expect(conn.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(2);
    expect(await quick).toMatchObject({ code: "TIMEOUT" });
    expect(conn.closed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("close() is synchronous and idempotent, and leaves no timer", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const [conn, peer] = await open();
    const a = conn.request(waitReq, "w", grant, 10_000);
    let calls = 0;
    conn.onClose(() => calls++);
    conn.close();
    conn.close();
    expect(conn.closed).toBe(true);
    expect(peer.closedByClient).toBe(true);
    expect(calls).toBe(1);
    await expect(a).rejects.toBeInstanceOf(ConnectionError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("surfaces a refused connection as a ConnectionError with its cause", async () => {
    rt.refuse = true;
    const err = await connect({ port: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it("validates connect() options before connecting", async () => {
    await expect(connect({ port: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(connect({ host: "" })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(connect({ connectTimeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(rt.peers.length).toBe(0);
  });

  it("rejects things that are not connections", () => {
    // A plain object is a type error, and refused at run time too.
    // @ts-expect-error
    expect(() => asConnection({})).toThrow(InvalidArgumentError);
    expect(() => asConnection(null as unknown as SocketLike)).toThrow(InvalidArgumentError);
  });

  it("an auth rejection closes the connection", async () => {
    const [conn, peer] = await open();
    const a = conn.request(waitReq, "auth", ok, 5000);
    peer.send("error_auth\n");
    await expect(a).rejects.toBeInstanceOf(ServerError);
    expect(conn.closed).toBe(true);
  });
});

/** A stream that records the core's calls, for what keeps the process alive. */
class RecordingStream implements ByteStream {
  readonly calls: string[] = [];
  handlers: StreamHandlers | undefined;
  throwOnRef = false;

  start(h: StreamHandlers): void {
    this.handlers = h;
  }
  write(): void {}
  close(): void {
    this.calls.push("close");
    this.handlers?.end();
  }
  ref(): void {
    this.calls.push("ref");
    if (this.throwOnRef) throw new Error("gone");
  }
  unref(): void {
    this.calls.push("unref");
  }
  /** Deliver a reply line. */
  reply(line: string): void {
    this.handlers?.data(new TextEncoder().encode(`${line}\n`));
  }
}

describe("Connection.send(): callbacks instead of a promise, for the lock's own requests", () => {
  const rel = "r\nk\nt\n";

  it("hands the replies of a chunk over once the chunk is read, every reply in it matched first, with ctx and tag", async () => {
    const [conn, peer] = await open();
    const ctx = { name: "holding" };
    const seen: Array<[unknown, unknown, number, number]> = [];
    const onReply = (v: unknown, c: typeof ctx, tag: number): void => {
      seen.push([v, c, tag, conn.pending]);
    };
    const onFail = vi.fn();
    conn.send(rel, "r", ok, 5000, onReply, onFail, ctx, 7);
    conn.send(rel, "r", ok, 5000, onReply, onFail, ctx, 8);
    peer.send("ok\nok\n");
    // Synchronously, as the chunk was read: no promise, no microtask.
    expect(seen).toEqual([
      [undefined, ctx, 7, 0],
      [undefined, ctx, 8, 0],
    ]);
    expect(onFail).not.toHaveBeenCalled();
    conn.close();
  });

  it("hands a reply over a microtask later when the stream answers inside write() (in memory), never inside send()", async () => {
    const stream = new RecordingStream();
    stream.write = () => stream.reply("ok");
    const conn = new Connection(stream);
    const onReply = vi.fn();
    conn.send(rel, "r", ok, 5000, onReply, vi.fn(), conn, 4);
    expect(onReply).not.toHaveBeenCalled();
    await Promise.resolve();
    expect(onReply).toHaveBeenCalledWith(undefined, conn, 4);
    conn.close();
  });

  it("fails a microtask later on a closed connection, never inside the call", async () => {
    const [conn] = await open();
    conn.close();
    const onFail = vi.fn();
    conn.send(rel, "r", ok, 5000, vi.fn(), onFail, conn, 3);
    expect(onFail).not.toHaveBeenCalled();
    await Promise.resolve();
    expect(onFail).toHaveBeenCalledWith(conn.closeError, conn, 3);
  });

  it("fails after a close has told its listeners and its owner", async () => {
    const [conn] = await open();
    const order: string[] = [];
    conn.onClose(() => order.push("listener"));
    conn.bindOwner(() => order.push("owner"));
    conn.send(rel, "r", ok, 5000, vi.fn(), () => order.push("failed"), conn, 0);
    conn.close();
    expect(order).toEqual(["listener", "owner"]);
    await Promise.resolve();
    expect(order).toEqual(["listener", "owner", "failed"]);
  });

  it("fails a refused request a microtask later too, with the typed error", async () => {
    const [conn, peer] = await open();
    const onFail = vi.fn();
    conn.send(rel, "r", ok, 5000, vi.fn(), onFail, conn, 1);
    peer.send("error_not_found\n");
    expect(onFail).not.toHaveBeenCalled();
    await Promise.resolve();
    expect(onFail.mock.calls[0]?.[0]).toBeInstanceOf(ServerError);
    conn.close();
  });

  it("a callback that throws stops neither the other replies nor the connection; its error is thrown apart", async () => {
    const [conn, peer] = await open();
    const thrown: Array<() => void> = [];
    const qm = vi.spyOn(globalThis, "queueMicrotask").mockImplementation((f) => thrown.push(f));
    try {
      const second = vi.fn();
      conn.send(
        rel,
        "r",
        ok,
        5000,
        () => {
          throw new Error("bug in a callback");
        },
        vi.fn(),
        conn,
        0,
      );
      conn.send(rel, "r", ok, 5000, second, vi.fn(), conn, 0);
      peer.send("ok\nok\n");
      expect(second).toHaveBeenCalledTimes(1);
      expect(conn.closed).toBe(false);
      expect(thrown).toHaveLength(1);
      expect(() => thrown[0]?.()).toThrow("bug in a callback");
    } finally {
      qm.mockRestore();
      conn.close();
    }
  });
});

describe("Connection and the event loop", () => {
  it("refs the stream only while a request waits for its reply", async () => {
    const s = new RecordingStream();
    const conn = new Connection(s);
    // An adapter's stream is unref'd from start() on; the core adds nothing until a request.
    expect(s.calls).toEqual([]);
    const a = conn.request(waitReq, "w", grant, 5000);
    const b = conn.request(waitReq, "w", grant, 5000);
    expect(s.calls).toEqual(["ref"]);
    s.reply(`ok ${token(1)} 5`);
    expect((await a)?.token).toBe(token(1));
    expect(s.calls).toEqual(["ref"]);
    s.reply("timeout");
    expect(await b).toBeNull();
    expect(s.calls).toEqual(["ref", "unref"]);
    const c = conn.request(encodeStats(), "r", ok, 5000);
    expect(s.calls).toEqual(["ref", "unref", "ref"]);
    s.reply("ok");
    await c;
    expect(s.calls).toEqual(["ref", "unref", "ref", "unref"]);
    conn.close();
    expect(s.calls).toEqual(["ref", "unref", "ref", "unref", "close"]);
  });

  it("lets go after a reply that is a server error too", async () => {
    const s = new RecordingStream();
    const conn = new Connection(s);
    const a = conn.request(waitReq, "w", grant, 5000);
    s.reply("error_not_enqueued");
    await expect(a).rejects.toMatchObject({ code: "NOT_ENQUEUED" });
    expect(conn.closed).toBe(false);
    expect(s.calls).toEqual(["ref", "unref"]);
  });

  it("leaves a closed stream alone", async () => {
    const s = new RecordingStream();
    const conn = new Connection(s);
    const a = conn.request(waitReq, "w", grant, 5000);
    conn.close();
    await expect(a).rejects.toBeInstanceOf(ConnectionError);
    await expect(conn.request(waitReq, "w", grant, 5000)).rejects.toBeInstanceOf(ConnectionError);
    expect(s.calls).toEqual(["ref", "close"]);
  });

  it("a ref() that throws does not fail the request", async () => {
    const s = new RecordingStream();
    s.throwOnRef = true;
    const conn = new Connection(s);
    const a = conn.request(encodeStats(), "r", ok, 5000);
    s.reply("ok");
    await a;
    expect(s.calls).toEqual(["ref", "unref"]);
  });

  it("the reply timer never keeps the process alive itself: it is unref'd", async () => {
    const timers = vi.spyOn(globalThis, "setTimeout");
    const s = new RecordingStream();
    const conn = new Connection(s);
    const a = conn.request(waitReq, "w", grant, 5000);
    expect(timers).toHaveBeenCalledTimes(1);
    // Node's, Bun's and Deno 2's handles all tell whether they keep the event loop alive.
    const handle = timers.mock.results[0]?.value as { hasRef(): boolean };
    expect(handle.hasRef()).toBe(false);
    timers.mockRestore();
    s.reply("timeout");
    await a;
    conn.close();
  });
});
