/**
 * What a client object's instances are made with: its options as read when
 * it was made, whether an instance has options of its own (merged with the
 * client's) or not (the client's settings as checked then); and TLS options
 * checked as read, each field once. Through the scripted in-memory peer,
 * whose targets show the TLS settings each connection was opened with.
 */
import { describe, expect, it } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import { resolveTls } from "../../src/open.ts";
import { serve, tick, usePoolTest } from "../support/pool.ts";

const runtime = usePoolTest();
const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const OTHER_CA = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";

/** Acquire a lock without options of its own and one with, on `client`; the TLS settings of each connection. */
async function tlsOfBoth(client: DflockdClient): Promise<unknown[]> {
  const rt = runtime();
  rt.onPeer = serve;
  const without = client.lock("a").acquire();
  const withOwn = client.lock("b", { acquireTimeoutS: 1 }).acquire();
  await tick();
  expect(await Promise.all([without, withOwn])).toEqual([true, true]);
  return rt.peers.map((p) => p.target.tls);
}

describe("a client's tls object", () => {
  it("with inherited fields reaches a lock with options of its own as it reaches one without", async () => {
    // Found in review: a copy of the object ({ ...tls }) has none of them, and would trust the default CAs.
    const tls = Object.create({ ca: CA, serverName: "locks.internal" }) as { ca: string; serverName: string };
    const client = new DflockdClient({ servers: ["127.0.0.1:7951"], leaseTtlS: 10, tls });
    try {
      const seen = await tlsOfBoth(client);
      expect(seen.length).toBeGreaterThan(0);
      for (const t of seen)
        expect(t).toEqual({ ca: [CA], cert: undefined, key: undefined, serverName: "locks.internal", verify: true });
    } finally {
      client.close();
    }
  });

  it("changed after the client was made changes none of its locks, with options of their own or not", async () => {
    const ca = [CA];
    const tls = { ca, insecureSkipVerify: false };
    const client = new DflockdClient({ servers: ["127.0.0.1:7952"], leaseTtlS: 10, tls });
    try {
      ca.push(OTHER_CA);
      tls.insecureSkipVerify = true;
      for (const t of await tlsOfBoth(client)) expect(t).toMatchObject({ ca: [CA], verify: true });
    } finally {
      client.close();
    }
  });
});

// Found in review: resolveTls() read some fields twice, and took a CA list's gaps.
describe("tls options are checked as read, each field once", () => {
  it("a CA list with a missing entry (undefined, or a hole) is refused before anything connects", () => {
    expect(() => resolveTls({ ca: [undefined as unknown as string] })).toThrow(InvalidArgumentError);
    const holey: string[] = [];
    holey[1] = CA;
    expect(() => new DflockdClient({ servers: ["127.0.0.1:7953"], tls: { ca: holey } })).toThrow(
      /tls\.ca must be a PEM string or a list of them/,
    );
  });

  it("a serverName getter's later answer reaches no lock unchecked", () => {
    let reads = 0;
    const tls = {
      get serverName(): string {
        return reads++ === 0 ? "locks.internal" : "not a host";
      },
    };
    const client = new DflockdClient({ servers: ["127.0.0.1:7954"], tls });
    try {
      expect(reads).toBe(1);
      expect(() => client.lock("k", {}).close()).not.toThrow();
      expect(client.lock("k").toJSON().server).toBe("127.0.0.1:7954");
    } finally {
      client.close();
    }
  });
});
