import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LeaseTracker, renewAt, safetyMarginMs } from "../../src/lease.ts";

describe("lease timing", () => {
  it("measures the deadline from when the request was sent", () => {
    const t = new LeaseTracker();
    t.granted({ token: "t", lease: 10 }, 1000, 1000, 500);
    expect(t.deadline).toBe(11_000);
    expect(t.lossAt).toBe(10_500);
    t.renewed({ lease: 20, fence: "9" }, 5000, 5040, 20);
    expect(t.deadline).toBe(25_000);
    expect(t.lossAt).toBe(24_500);
    expect(t.grant).toEqual({ token: "t", lease: 20, fence: "9" });
  });

  it("forgets the grant when cleared", () => {
    const t = new LeaseTracker();
    t.granted({ token: "t", lease: 10 }, 0, 0, 0);
    expect(t.grant?.token).toBe("t");
    t.clear();
    expect(t.grant).toBeUndefined();
  });

  it("takes a bare ok (older servers) as the TTL asked for", () => {
    const t = new LeaseTracker();
    t.granted({ token: "t", lease: 4 }, 0, 0, 300);
    t.renewed({}, 1000, 1010, 4);
    expect(t.deadline).toBe(5000);
    expect(t.grant?.lease).toBe(4);
  });

  it("reads an older server's 'seconds remaining' reply as the TTL it renewed to", () => {
    const t = new LeaseTracker();
    t.granted({ token: "t", lease: 1 }, 0, 0, 0);
    t.renewed({ lease: 0 }, 500, 501, 1);
    expect(t.deadline).toBe(1500);
    t.renewed({ lease: 9 }, 1000, 1001, 10);
    expect(t.deadline).toBe(11_000);
    t.renewed({ lease: 5 }, 2000, 2001, 10);
    expect(t.deadline).toBe(7000);
  });
});

describe("safety margin", () => {
  it("defaults to 5 % of the lease, at least 300 ms, at most half", () => {
    expect(safetyMarginMs(33, undefined)).toBe(1650);
    expect(safetyMarginMs(2, undefined)).toBe(300);
    expect(safetyMarginMs(1, undefined)).toBe(300);
    expect(safetyMarginMs(120, undefined)).toBe(6000);
  });

  it("takes the configured value, never more than half the lease", () => {
    expect(safetyMarginMs(10, 0)).toBe(0);
    expect(safetyMarginMs(10, 2000)).toBe(2000);
    expect(safetyMarginMs(1, 2000)).toBe(500);
  });
});

describe("confirmation of a late grant", () => {
  it("is needed when less than half the usable lease is left", () => {
    const t = new LeaseTracker();
    // Sent at 0, lease 10 s, margin 1 s: usable until 9000.
    t.granted({ token: "t", lease: 10 }, 0, 0, 1000);
    expect(t.needsConfirmation(100)).toBe(false);
    expect(t.needsConfirmation(4400)).toBe(false);
    expect(t.needsConfirmation(4600)).toBe(true);
    expect(t.needsConfirmation(12_000)).toBe(true);
  });
});

describe("renewAt", () => {
  it("renews after ratio of the usable lease, timed from the send", () => {
    // start 1000, lossAt 1000 + 20000 - 1000: usable 19 s.
    expect(renewAt(1000, 20_000, 1000, 0.5, 0, 60_000)).toBe(10_500);
  });

  it("subtracts two round trips, so the reply lands before the loss", () => {
    // The case: ratio 0.7, a 2 s lease, 300 ms round trips, 300 ms margin.
    const at = renewAt(0, 1700, 0, 0.7, 300, 23_000);
    expect(at + 300).toBeLessThan(1700);
    expect(at).toBe(1090);
  });

  it("never lets the connection idle into the server's read timeout", () => {
    // A 120 s lease on a default server (23 s) renews well within 23 s of the last send.
    expect(renewAt(0, 114_000, 0, 0.5, 0, 23_000)).toBe(22_000);
    expect(renewAt(0, 57_000, 0, 0.9, 0, 3_000)).toBeLessThan(3_000);
    // The idle clock runs from the last send, not from the lease's start.
    expect(renewAt(0, 114_000, 5000, 0.5, 0, 23_000)).toBe(27_000);
  });

  it("keeps a margin before the read timeout even with a ratio near 1", () => {
    expect(renewAt(0, 57_000, 0, 0.99, 0, 23_000)).toBe(22_000);
    expect(renewAt(0, 57_000, 0, 0.99, 0, 2_000)).toBe(1_500);
  });

  it("never schedules before the last send, however late things are", () => {
    expect(renewAt(0, 100, 5000, 0.5, 400, 23_000)).toBe(5010);
  });
});

describe("the invariant: the client's deadline is never later than the server's", () => {
  const delay = fc.integer({ min: 0, max: 60_000 });
  it("for grants, two-phase grants and renewals, under any delay of any message", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.record({ up: delay, queued: delay, down: delay }),
        fc.option(fc.record({ wUp: delay, wDown: delay, gap: delay })),
        fc.array(fc.record({ idle: delay, up: delay, down: delay }), { maxLength: 6 }),
        fc.integer({ min: 0, max: 5000 }),
        (leaseS, sent, g, twoPhase, renewals, margin) => {
          const lease = leaseS * 1000;
          const t = new LeaseTracker();
          // The server starts the lease when it grants: the request's send
          // time, plus its transit, plus any wait in the queue.
          const serverStart = sent + g.up + g.queued;
          let serverExpiry = serverStart + lease;
          let arrival = serverStart + g.down;
          let lastSend = sent;
          if (twoPhase !== null) {
            // e sent at `sent`; w sent later; the server restarts the lease when it answers w.
            const wSent = Math.max(sent, arrival) + twoPhase.gap;
            const wServer = Math.max(wSent + twoPhase.wUp, serverStart);
            if (wServer >= serverExpiry) return; // lapsed before w: the server says so; no grant
            serverExpiry = wServer + lease;
            arrival = wServer + twoPhase.wDown;
            lastSend = wSent;
          }
          t.granted({ token: "t", lease: leaseS }, sent, lastSend, Math.min(margin, lease / 2));
          expect(t.deadline).toBeLessThanOrEqual(serverExpiry);
          expect(t.lossAt).toBeLessThanOrEqual(serverExpiry);
          let clock = arrival;
          for (const r of renewals) {
            const renewSent = clock + r.idle;
            const atServer = renewSent + r.up;
            // A renewal that reaches the server after expiry is refused: no confirmation.
            if (atServer >= serverExpiry) return;
            serverExpiry = atServer + lease;
            clock = atServer + r.down;
            t.renewed({ lease: leaseS }, renewSent, clock, leaseS);
            expect(t.deadline).toBeLessThanOrEqual(serverExpiry);
            expect(t.lossAt).toBeLessThanOrEqual(serverExpiry - t.marginMs);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });
});
