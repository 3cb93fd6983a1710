/**
 * Renewal against real servers. These tests are about time passing, so they
 * wait real seconds; everything else awaits events.
 */
import { describe, expect, it } from "vitest";
import { DistributedLock, DistributedSemaphore, LockLostError, stats } from "../support/client.ts";
import { elapse, key, until, useDflockd } from "./helpers.ts";

describe("on a server with --read-timeout 2", () => {
  const server = useDflockd(["--read-timeout", "2", "--lease-sweep-interval", "1"]);
  const at = () => ({ servers: [server().address], serverReadTimeoutS: 2 });
  const where = () => ({ host: server().host, port: server().port });

  it("a leaseTtlS: 120 lock is still held after several read timeouts", async () => {
    const k = key("long");
    const lock = new DistributedLock({ key: k, leaseTtlS: 120, ...at() });
    await lock.acquire();
    await elapse(7_000);
    expect(lock.state === "held" || lock.state === "renewing").toBe(true);
    const entry = (await stats(where())).locks.find((l) => l.key === k);
    // Renewals kept the TTL the lock was taken with, not the server default (33).
    expect(entry?.lease_expires_in_s).toBeGreaterThan(100);
    await lock.release();
  });

  it("a leaseTtlS: 1 lock stays held", async () => {
    const k = key("short");
    const lock = new DistributedLock({ key: k, leaseTtlS: 1, ...at() });
    await lock.acquire();
    await elapse(4_000);
    expect(lock.held).toBe(true);
    expect(await new DistributedLock({ key: k, acquireTimeoutS: 0, ...at() }).acquire()).toBe(false);
    await lock.release();
  });

  it("a semaphore slot is renewed the same way", async () => {
    const sem = new DistributedSemaphore({ key: key("sem"), limit: 2, leaseTtlS: 60, ...at() });
    await sem.acquire();
    await elapse(5_000);
    expect(sem.held).toBe(true);
    await sem.release();
  });

  it("a client that renews too rarely for the server's read timeout is told promptly that it lost the lock", async () => {
    const k = key("idle");
    let lost: LockLostError | undefined;
    const lock = new DistributedLock({
      key: k,
      leaseTtlS: 60,
      servers: [server().address],
      serverReadTimeoutS: 23, // wrong on purpose: the server cuts idle connections after 2 s
      onLost: (e) => {
        lost = e;
      },
    });
    await lock.acquire();
    await until(() => lost !== undefined, 5_000, "onLost");
    expect(lost).toBeInstanceOf(LockLostError);
    // The message names the option that prevents this and the value it needs: the idle time seen, rounded
    // down (2, or 1 when the close came a moment early by the client's clock), or the server's --read-timeout.
    expect(lost?.message).toMatch(/idle [12]\.\d s: its read timeout looks shorter than the 23 s the client assumed/);
    expect(lost?.message).toMatch(/Set serverReadTimeoutS to [12], or to the server's --read-timeout/);
    expect(lock.state).toBe("lost");
    await expect(lock.release()).rejects.toBeInstanceOf(LockLostError);
    // And the instance can acquire again.
    expect(await lock.acquire()).toBe(true);
    lock.close();
  });
});
