/**
 * src/targets.ts: the servers of an instance, checked once and shared. The
 * instance made last is remembered, so that a new instance per operation with
 * the same servers checks nothing again; these tests hold that memory to what
 * a full check would give whenever anything differs: the servers' form,
 * values or count, `tls`, `auth`, `runtime`, the connect timeout, an array
 * or runtime changed in place since, and options read through getters that
 * answer differently each time (written in review).
 */
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.ts";
import type { LockOptions } from "../../src/options.ts";
import { connectionTargets } from "../../src/targets.ts";
import type { Runtime } from "../../src/transport.ts";

const targetsOf = (options: Partial<LockOptions>, timeout = 1000) =>
  connectionTargets({ key: "k", ...options }, timeout);
const where = (options: Partial<LockOptions>, timeout = 1000): string[] =>
  targetsOf(options, timeout).map((t) => `${t.open.host}:${t.open.port}`);

/** A runtime that passes the option's check (it is never asked to connect here). */
const runtime = (name: string): Runtime =>
  ({ name, connect: () => undefined, stream: () => undefined, close: () => undefined }) as unknown as Runtime;

describe("connectionTargets remembers the instance made last", () => {
  it("gives the same targets for the same servers, in any of their forms", () => {
    const pairs = targetsOf({ servers: [["10.1.0.1", 7001]] });
    expect(targetsOf({ servers: [["10.1.0.1", 7001]] })).toBe(pairs);
    expect(targetsOf({ servers: ["10.1.0.1:7001"] })).toBe(pairs);
    expect(targetsOf({ host: "10.1.0.1", port: 7001 })).toBe(pairs);
    const defaults = targetsOf({});
    expect(targetsOf({})).toBe(defaults);
    expect(where({})).toEqual(["127.0.0.1:6388"]);
  });

  it("checks afresh whatever differs from it: servers, their count, the timeout", () => {
    expect(where({ servers: ["10.1.0.1:7001", ["10.1.0.2", 7002]] })).toEqual(["10.1.0.1:7001", "10.1.0.2:7002"]);
    expect(where({ servers: ["10.1.0.1:7001"] })).toEqual(["10.1.0.1:7001"]);
    expect(where({ servers: ["10.1.0.1:7001", ["10.1.0.2", 7003]] })).toEqual(["10.1.0.1:7001", "10.1.0.2:7003"]);
    expect(where({ servers: ["10.1.0.9:7001", ["10.1.0.2", 7003]] })).toEqual(["10.1.0.9:7001", "10.1.0.2:7003"]);
    expect(where({ host: "10.1.0.3" })).toEqual(["10.1.0.3:6388"]);
    expect(where({ port: 7004 })).toEqual(["127.0.0.1:7004"]);
    expect(targetsOf({ port: 7004 }, 2500)[0]?.open.connectTimeoutMs).toBe(2500);
    expect(targetsOf({ port: 7004 }, 1000)[0]?.open.connectTimeoutMs).toBe(1000);
  });

  it("never answers for tls or auth, and tells runtimes apart", () => {
    const servers = ["10.1.0.1:7001"];
    const plain = targetsOf({ servers });
    const tls = targetsOf({ servers, tls: true })[0]?.open;
    expect(tls?.tls).toMatchObject({ verify: true });
    expect(targetsOf({ servers, tls: true })[0]?.open.tls).toMatchObject({ verify: true });
    expect(targetsOf({ servers, auth: "s3cret" })[0]?.open.auth).toBeDefined();
    expect(targetsOf({ servers, auth: "s3cret" })[0]?.open.auth).toBeDefined();
    expect(targetsOf({ servers })).toBe(plain);
    expect(targetsOf({ servers, tls: false })).toBe(plain);
    const [a, b] = [runtime("a"), runtime("b")];
    const withA = targetsOf({ servers, runtime: a });
    expect(withA[0]?.open.runtime).toBe(a);
    expect(targetsOf({ servers, runtime: a })).toBe(withA);
    expect(targetsOf({ servers, runtime: b })[0]?.open.runtime).toBe(b);
    expect(targetsOf({ servers, runtime: b })[0]?.poolKey).not.toBe(withA[0]?.poolKey);
    expect(targetsOf({ servers })[0]?.open.runtime).toBeUndefined();
  });

  it("throws for what a full check refuses, the servers remembered or not", () => {
    const servers: Array<[string, number]> = [["10.1.0.1", 7001]];
    targetsOf({ servers });
    expect(() => targetsOf({ servers, host: "10.1.0.1" })).toThrow(/either servers or the deprecated host/);
    expect(() => targetsOf({ servers, port: 7001 })).toThrow(InvalidArgumentError);
    (servers[0] as unknown as unknown[]).push("extra");
    expect(() => targetsOf({ servers })).toThrow(/a \[host, port\] pair has 2 items/);
    servers[0] = ["10.1.0.1", 7001];
    expect(where({ servers })).toEqual(["10.1.0.1:7001"]);
    expect(() => targetsOf({ servers, tls: "yes" as unknown as boolean })).toThrow(/tls must be/);
  });

  it("checks a remembered runtime again: one changed in place since is refused", () => {
    const r = runtime("changing");
    targetsOf({ runtime: r });
    expect(targetsOf({ runtime: r })[0]?.open.runtime).toBe(r);
    delete (r as { connect?: unknown }).connect;
    expect(() => targetsOf({ runtime: r })).toThrow(/runtime must be a Runtime/);
  });
  it("compares only the targets it made: getters that answer differently each time never mislead it", () => {
    where({ servers: ["10.2.0.1:7001"] });
    where({ port: 7009 });
    let reads = 0;
    const servers: string[] = [];
    Object.defineProperty(servers, 0, {
      get: () => (reads++ === 0 ? "10.2.0.1:7001" : "10.2.0.2:7002"),
      enumerable: true,
    });
    expect(["10.2.0.1:7001", "10.2.0.2:7002"]).toContain(where({ servers })[0]);
    expect(where({ servers: ["10.2.0.2:7002"] })).toEqual(["10.2.0.2:7002"]);
    expect(where({ servers: ["10.2.0.1:7001"] })).toEqual(["10.2.0.1:7001"]);

    targetsOf({ servers: ["10.2.0.3:7003"], tls: true });
    let tlsReads = 0;
    const withTls = {
      servers: ["10.2.0.3:7003"],
      get tls() {
        return tlsReads++ === 0 ? true : undefined;
      },
    };
    expect(targetsOf(withTls)[0]?.open.tls).toBeDefined();
    expect(targetsOf({ servers: ["10.2.0.3:7003"] })[0]?.open.tls).toBeUndefined();
  });
});
