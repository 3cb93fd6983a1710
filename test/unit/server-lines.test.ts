/**
 * The server's line reader (src/server/lines.ts) keeps memory bounded as
 * dflockd does: a line past 256 bytes is kept only as "overlong" (the rest of
 * it dropped up to its newline), and unread lines past a high-water mark ask
 * the connection to stop reading until the session has taken them.
 */
import { describe, expect, it } from "vitest";
import { LineReader, type LineReaderOptions } from "../../src/server/lines.ts";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (r: unknown): unknown =>
  typeof r === "object" && r !== null && "line" in r ? new TextDecoder().decode(r.line as Uint8Array) : r;

function reader(options: Partial<LineReaderOptions> = {}): { r: LineReader; log: string[] } {
  const log: string[] = [];
  const r = new LineReader({
    maxLine: 256,
    dropCr: false,
    highWater: 1024,
    full: () => log.push("full"),
    room: () => log.push("room"),
    ...options,
  });
  return { r, log };
}

describe("LineReader", () => {
  it("hands out lines split across chunks, and several in one chunk", async () => {
    const { r } = reader();
    r.push(bytes("l\nke"));
    r.push(bytes("y\n0\r\n"));
    expect([text(await r.next(0)), text(await r.next(0)), text(await r.next(0))]).toEqual(["l", "key", "0\r"]);
  });

  it("keeps 256 bytes, and a longer line only as overlong however long it is", async () => {
    const { r, log } = reader();
    r.push(bytes(`${"k".repeat(256)}\n`));
    expect(text(await r.next(0))).toBe("k".repeat(256));
    for (let i = 0; i < 256; i++) r.push(new Uint8Array(64 * 1024).fill(0x6b)); // 16 MiB, no newline
    expect(log).toEqual([]); // nothing held, so nothing to hold back
    r.push(bytes("\nnext\n"));
    expect(await r.next(0)).toBe("overlong");
    expect(text(await r.next(0))).toBe("next");
  });

  it("counts a trailing \\r in the limit (v1.10.0), or drops every \\r first (later builds)", async () => {
    const v110 = reader().r;
    v110.push(bytes(`${"k".repeat(256)}\r\n`));
    expect(await v110.next(0)).toBe("overlong");
    const later = reader({ dropCr: true }).r;
    later.push(bytes(`${"k".repeat(128)}\r${"\r".repeat(500)}${"k".repeat(128)}\r\n`));
    expect(text(await later.next(0))).toBe("k".repeat(256));
  });

  it("asks to stop reading past the high-water mark, and to read again once mostly taken", async () => {
    const { r, log } = reader();
    const line = `${"x".repeat(99)}\n`;
    for (let i = 0; i < 11; i++) r.push(bytes(line)); // 1,089 bytes held
    expect(log).toEqual(["full"]);
    for (let i = 0; i < 8; i++) await r.next(0); // 297 held: above a quarter of 1,024
    expect(log).toEqual(["full"]);
    await r.next(0); // 198 held
    expect(log).toEqual(["full", "room"]);
  });

  it("ends a wait with timeout, or closed once the peer has gone and every line is taken", async () => {
    const { r } = reader();
    expect(await r.next(10)).toBe("timeout");
    r.push(bytes("last\n"));
    r.close();
    expect(text(await r.next(0))).toBe("last");
    expect(await r.next(0)).toBe("closed");
  });
});
