/**
 * The command line's internal wire-wait option: the seconds sent for an
 * `Infinity` wait, checked; the public one-hour guard stays for everyone else.
 */
import { describe, expect, it } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import { readSettings } from "../../src/options.ts";
import { acquireRequest } from "../../src/protocol.ts";
import { secondsOnWire, WIRE_WAIT, wireWaitOf } from "../../src/wire-wait.ts";

describe("WIRE_WAIT", () => {
  it("sends its seconds in place of Infinity, and nothing else changes", () => {
    expect(secondsOnWire(Infinity, { infinityS: 5400 })).toBe(5400);
    expect(secondsOnWire(Infinity, undefined)).toBe(Infinity);
    expect(secondsOnWire(7, { infinityS: 5400 })).toBe(7);
    expect(acquireRequest("lock", "k", secondsOnWire(Infinity, { infinityS: 5400 }), undefined, undefined)).toBe(
      acquireRequest("lock", "k", 5400, undefined, undefined),
    );
  });

  it("is checked, and reaches a lock's settings through client.lock() (a symbol Object.entries() drops)", () => {
    expect(() => wireWaitOf({ [WIRE_WAIT]: { infinityS: 1.5 } })).toThrow(InvalidArgumentError);
    expect(() => wireWaitOf({ [WIRE_WAIT]: { infinityS: 0 } })).toThrow(InvalidArgumentError);
    expect(() => wireWaitOf({ [WIRE_WAIT]: { onSent: 1 } })).toThrow(InvalidArgumentError);
    const wire = { infinityS: 5400 };
    expect(readSettings("lock", { key: "k", [WIRE_WAIT]: wire } as never).wire).toBe(wire);
    const client = new DflockdClient({ servers: [["127.0.0.1", 1]] });
    try {
      // Public options still refuse more than an hour, with or without it.
      expect(() => client.lock("k", { acquireTimeoutS: 5400 })).toThrow(/one hour/);
      expect(() => client.lock("k", { [WIRE_WAIT]: wire } as never)).not.toThrow();
    } finally {
      client.close();
    }
  });
});
