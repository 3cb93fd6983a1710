/**
 * InFlight.handOver(): replies read while callbacks run (an in-memory stream
 * answering inside write()) keep their order, and a callback that closes the
 * connection lets the rest of its chunk's replies through.
 */
import { beforeEach, expect, it, vi } from "vitest";
import { connect } from "../../src/open.ts";
import { parseOkReply } from "../../src/protocol.ts";
import { type ScriptedRuntime, useScriptedRuntime } from "../support/scripted-peer.ts";

let rt: ScriptedRuntime;
beforeEach(() => {
  rt = useScriptedRuntime();
});
const ok = (l: string) => parseOkReply(l, "r");
const rel = "r\nk\nt\n";

it("a callback whose request is answered at once (in-memory) is handed over after the rest of its chunk, in order", async () => {
  const conn = await connect({ host: "h", port: 1 });
  const peer = rt.peers[0];
  if (peer === undefined) throw new Error("no peer");
  const order: number[] = [];
  const onFail = vi.fn();
  const onReply = (_v: unknown, _c: object, tag: number): void => {
    order.push(tag);
    if (tag === 1) {
      // Answered inside write(): #onData re-entered while the chunk's replies are being handed over.
      peer.onRequest = () => peer.send("ok\n");
      conn.send(rel, "r", ok, 5000, onReply, onFail, conn, 3);
    }
  };
  conn.send(rel, "r", ok, 5000, onReply, onFail, conn, 1);
  conn.send(rel, "r", ok, 5000, onReply, onFail, conn, 2);
  peer.send("ok\nok\n");
  expect(order).toEqual([1, 2, 3]);
  expect(conn.pending).toBe(0);
  // Nothing left over for a later chunk.
  peer.onRequest = undefined;
  conn.send(rel, "r", ok, 5000, onReply, onFail, conn, 4);
  peer.send("ok\n");
  expect(order).toEqual([1, 2, 3, 4]);
  await Promise.resolve();
  expect(onFail).not.toHaveBeenCalled();
  conn.close();
});

it("a callback that closes the connection mid-hand-over: the later replies of the chunk still come, the rest fail after", async () => {
  const conn = await connect({ host: "h", port: 1 });
  const peer = rt.peers[0];
  if (peer === undefined) throw new Error("no peer");
  const seen: string[] = [];
  const onReply = (_v: unknown, _c: object, tag: number): void => {
    seen.push(`ok${tag}`);
    if (tag === 1) conn.close();
  };
  const onFail = (_e: unknown, _c: object, tag: number): void => {
    seen.push(`fail${tag}`);
  };
  conn.send(rel, "r", ok, 5000, onReply, onFail, conn, 1);
  conn.send(rel, "r", ok, 5000, onReply, onFail, conn, 2);
  conn.send(rel, "r", ok, 5000, onReply, onFail, conn, 3);
  peer.send("ok\nok\n");
  expect(seen).toEqual(["ok1", "ok2"]);
  await Promise.resolve();
  expect(seen).toEqual(["ok1", "ok2", "fail3"]);
});
