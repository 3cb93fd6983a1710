/**
 * The Deno adapter's writes (adapters/deno/transport.ts), over a fake
 * `Deno.Conn` (no Deno API is called): one `conn.write()` at a time, in
 * order; what is written meanwhile goes out next in one call; a partial write
 * continues with the rest. The same adapter over real sockets is in
 * test/transport/adapter.test.ts, run on Deno.
 */
import { describe, expect, it } from "vitest";
import { denoRuntime } from "../../adapters/deno/transport.ts";
import type { DialRequest } from "../../src/transport.ts";

const request = { host: "127.0.0.1", port: 6388 } as DialRequest;

/** A connection whose reads never end and whose writes are settled by the test. */
function fakeConn() {
  const writes: Array<{ text: string; done: (n: number) => void }> = [];
  const conn = {
    read: () => new Promise<number | null>(() => {}),
    write(bytes: Uint8Array): Promise<number> {
      return new Promise<number>((done) => writes.push({ text: new TextDecoder().decode(bytes), done }));
    },
    ref() {},
    unref() {},
    close() {},
  };
  return { conn: conn as unknown as Deno.Conn, writes };
}

/** A started stream over a fake connection, and the writes it made. */
function started() {
  const { conn, writes } = fakeConn();
  const stream = denoRuntime.stream(conn, request);
  stream.start({ data: () => {}, end: () => {} });
  return { stream, writes };
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const turn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

describe("the Deno adapter's writes", () => {
  it("writes what queued behind a write in progress in one call, in order", async () => {
    const { stream, writes } = started();
    stream.write(bytes("l\na\n0 10\n"));
    stream.write(bytes("l\nb\n0 10\n"));
    stream.write(bytes("l\nc\n0 10\n"));
    stream.write(bytes("r\nd\ntok\n"));
    expect(writes.map((w) => w.text)).toEqual(["l\na\n0 10\n"]);
    writes[0]?.done(9);
    await turn();
    expect(writes.map((w) => w.text)).toEqual(["l\na\n0 10\n", "l\nb\n0 10\nl\nc\n0 10\nr\nd\ntok\n"]);
    // A partial write goes on with the rest, and a chunk written meanwhile waits behind it.
    stream.write(bytes("r\ne\ntok\n"));
    writes[1]?.done(4);
    await turn();
    expect(writes[2]?.text).toBe("0 10\nl\nc\n0 10\nr\nd\ntok\n");
    writes[2]?.done(23);
    await turn();
    expect(writes[3]?.text).toBe("r\ne\ntok\n");
    expect(writes).toHaveLength(4);
    stream.close();
  });

  it("a lone chunk goes out as it is", async () => {
    const { stream, writes } = started();
    stream.write(bytes("l\na\n0 10\n"));
    stream.write(bytes("r\na\ntok\n"));
    writes[0]?.done(9);
    await turn();
    expect(writes.map((w) => w.text)).toEqual(["l\na\n0 10\n", "r\na\ntok\n"]);
    stream.close();
  });
});
