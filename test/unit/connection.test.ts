import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { asConnection, type Connection } from "../../src/connection.ts";
import { ConnectionError, InvalidArgumentError, type LockError, ProtocolError, ServerError } from "../../src/errors.ts";
import { connect } from "../../src/open.ts";
import { encodeStats, encodeWait, parseGrantReply, parseOkReply } from "../../src/protocol.ts";
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
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
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
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
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
    expect(() => asConnection({})).toThrow(InvalidArgumentError);
    expect(() => asConnection(null as unknown as object)).toThrow(InvalidArgumentError);
  });

  it("an auth rejection closes the connection", async () => {
    const [conn, peer] = await open();
    const a = conn.request(waitReq, "auth", ok, 5000);
    peer.send("error_auth\n");
    await expect(a).rejects.toBeInstanceOf(ServerError);
    expect(conn.closed).toBe(true);
  });
});
