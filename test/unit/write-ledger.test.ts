/**
 * The byte count the Bun and Deno listeners share (src/server/listen.ts):
 * `queued`, and `flushed()` calls released in order, each once the bytes
 * written before it have been taken, or all at once by `settle()`.
 */
import { describe, expect, it } from "vitest";
import { WriteLedger } from "../../src/server/listen.ts";

describe("WriteLedger", () => {
  it("releases each flushed() once the bytes given before it are taken", async () => {
    const ledger = new WriteLedger();
    await ledger.flushed(); // nothing given: at once
    const done: string[] = [];
    ledger.give(10);
    const first = ledger.flushed().then(() => done.push("first"));
    ledger.give(5);
    const second = ledger.flushed().then(() => done.push("second"));
    expect(ledger.queued).toBe(15);
    ledger.take(9);
    await Promise.resolve();
    expect(done).toEqual([]);
    ledger.take(1);
    await first;
    expect(done).toEqual(["first"]);
    expect(ledger.queued).toBe(5);
    ledger.settle(); // the connection is gone: nothing more will be taken
    await second;
    expect(done).toEqual(["first", "second"]);
    expect(ledger.queued).toBe(0);
  });
});
