/**
 * Renewal on a server with default settings (read timeout 23 s), over a
 * minute of real time. A file of its own so that it runs beside the others.
 */
import { describe, expect, it } from "vitest";
import { DistributedLock, stats } from "../support/client.ts";
import { elapse, key, useDflockd } from "./helpers.ts";

describe("on a default server", () => {
  const server = useDflockd();

  it("a lock taken with leaseTtlS: 120 is still held after 60 s", { timeout: 90_000 }, async () => {
    const k = key("default");
    const lock = new DistributedLock({ key: k, leaseTtlS: 120, servers: [server().address] });
    await lock.acquire();
    await elapse(60_000);
    expect(lock.held).toBe(true);
    const entry = (await stats({ host: server().host, port: server().port })).locks.find((l) => l.key === k);
    expect(entry?.lease_expires_in_s).toBeGreaterThan(90);
    await lock.release();
  });
});
