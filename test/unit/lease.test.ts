import { describe, expect, it } from "vitest";
import { canTransition, type LeaseState, LeaseTracker, renewDelayMs } from "../../src/lease.ts";

const STATES: LeaseState[] = ["connecting", "queued", "held", "renewing", "releasing", "released", "lost"];

describe("lease state machine", () => {
  it("starts released", () => {
    expect(new LeaseTracker().state).toBe("released");
  });

  it("allows exactly the documented transitions", () => {
    const allowed = new Set([
      "released>connecting",
      "released>released",
      "connecting>queued",
      "connecting>held",
      "connecting>released",
      "queued>held",
      "queued>released",
      "held>renewing",
      "held>releasing",
      "held>lost",
      "held>released",
      "renewing>held",
      "renewing>releasing",
      "renewing>lost",
      "renewing>released",
      "releasing>released",
      "lost>connecting",
      "lost>released",
    ]);
    for (const from of STATES) {
      for (const to of STATES) expect(canTransition(from, to), `${from}>${to}`).toBe(allowed.has(`${from}>${to}`));
    }
  });

  it("rejects an illegal transition loudly", () => {
    const t = new LeaseTracker();
    expect(() => t.to("held")).toThrow(/illegal transition released -> held/);
  });

  it("measures the deadline from when the request was sent", () => {
    const t = new LeaseTracker();
    t.to("connecting");
    t.granted({ token: "t", lease: 10 }, 1000);
    expect(t.state).toBe("held");
    expect(t.deadline).toBe(11_000);
    t.to("renewing");
    t.renewed({ lease: 20, fence: "9" }, 5000, 5040, 20);
    expect(t.state).toBe("renewing");
    expect(t.deadline).toBe(25_000);
    expect(t.grant).toEqual({ token: "t", lease: 20, fence: "9" });
    expect(t.rttMs).toBe(40);
  });

  it("forgets the grant when lost or released", () => {
    const t = new LeaseTracker();
    t.to("connecting");
    t.granted({ token: "t", lease: 10 }, 0);
    t.to("lost");
    expect(t.grant).toBeUndefined();
    t.to("connecting");
    t.granted({ token: "u", lease: 10 }, 0);
    t.to("released");
    expect(t.grant).toBeUndefined();
  });
});

describe("renewDelayMs", () => {
  it("renews at lease × ratio", () => {
    expect(renewDelayMs(20, 0.5, 0, 23_000)).toBe(10_000);
    expect(renewDelayMs(1, 0.5, 0, 23_000)).toBe(500);
  });

  it("never lets the connection idle into the server's read timeout", () => {
    // A 120 s lease on a default server must still renew well within 23 s.
    expect(renewDelayMs(120, 0.5, 0, 23_000)).toBe(11_500);
    expect(renewDelayMs(60, 0.9, 0, 3_000)).toBeLessThan(3_000);
  });

  it("leaves room for three round trips before the deadline", () => {
    expect(renewDelayMs(1, 0.9, 100, 23_000)).toBe(700);
    expect(renewDelayMs(1, 0.5, 400, 23_000)).toBe(10);
  });

  it("keeps a margin before the read timeout even with a ratio near 1", () => {
    expect(renewDelayMs(60, 0.99, 0, 23_000)).toBe(22_000);
    expect(renewDelayMs(60, 0.99, 0, 2_000)).toBe(1_500);
  });

  it("reads an older server's 'seconds remaining' reply as the TTL it renewed to", () => {
    const t = new LeaseTracker();
    t.to("connecting");
    t.granted({ token: "t", lease: 1 }, 0);
    t.renewed({ lease: 0 }, 500, 501, 1);
    expect(t.deadline).toBe(1500);
    t.renewed({ lease: 9 }, 1000, 1001, 10);
    expect(t.deadline).toBe(11_000);
    t.renewed({ lease: 5 }, 2000, 2001, 10);
    expect(t.deadline).toBe(7000);
  });
});
