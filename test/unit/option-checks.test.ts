/**
 * Options that catch mistakes at run time too: unknown keys (typos), seconds
 * given as milliseconds and the reverse, and values of the wrong type, each
 * named in the message. Nothing is ever sent.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import { stats } from "../../src/lowlevel.ts";
import { connect } from "../../src/open.ts";
import { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import { type ScriptedRuntime, useScriptedRuntime } from "../support/scripted-peer.ts";

let rt: ScriptedRuntime;
beforeEach(() => {
  rt = useScriptedRuntime();
});

function refused(make: () => unknown, message: RegExp): void {
  let err: unknown;
  try {
    make();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InvalidArgumentError);
  expect((err as Error).message).toMatch(message);
}

const o = (x: object): never => x as never;

describe("unknown option keys", () => {
  it.each([
    [() => new DistributedLock(o({ key: "k", timeout: 5 })), /DistributedLock options: unknown option "timeout"/],
    [() => new DistributedLock(o({ key: "k", leaseTTL: 5 })), /did you mean "leaseTtlS"/],
    [() => new DistributedLock(o({ key: "k", limit: 2 })), /unknown option "limit"/],
    [() => new DistributedSemaphore(o({ key: "k", limit: 2, hots: "x" })), /did you mean "host"/],
    [() => new DflockdClient(o({ maxIdle: 3 })), /did you mean "maxIdlePerServer"/],
    [() => new DflockdClient().lock("k", o({ leaseTtl: 3 })), /lock options: unknown option "leaseTtl".*"leaseTtlS"/],
    [() => new DistributedLock(o({ key: "k", tls: { ca: undefined, verify: true } })), /tls: unknown option "verify"/],
  ])("%#: refused, naming the key and the nearest known one", (make, message) => {
    refused(make, message);
    expect(rt.peers.length).toBe(0);
  });

  it("stats() and connect() refuse typos instead of asking 127.0.0.1:6388", async () => {
    await expect(stats(o({ hots: "x", prot: 1 }))).rejects.toThrow(/unknown option "hots" \(did you mean "host"\?\)/);
    await expect(connect(o({ prot: 1 }))).rejects.toThrow(/unknown option "prot" \(did you mean "port"\?\)/);
    expect(rt.peers.length).toBe(0);
  });

  it("a client's lock options: connection settings belong to the client; an explicit undefined keeps its default", async () => {
    const client = new DflockdClient({ servers: [["h", 1]], leaseTtlS: 20 });
    refused(() => client.lock("k", o({ serverReadTimeoutS: 30 })), /serverReadTimeoutS is the client's setting/);
    refused(() => client.lock("k", o({ maxIdlePerServer: 3 })), /maxIdlePerServer is the client's setting/);
    const lock = client.lock("k", { leaseTtlS: undefined, acquireTimeoutS: 0 });
    const p = lock.acquire();
    const peer = await rt.peer();
    expect(await peer.nextRequest(1)).toEqual(["l", "k", "0 20"]);
    peer.send("timeout\n");
    expect(await p).toBe(false);
    client.close();
  });

  it("inherited properties are not mistaken for options", () => {
    const options = Object.create({ inherited: true }) as { key: string };
    options.key = "k";
    new DistributedLock(options).close();
  });

  it("the semaphore's limit, and every documented key, are accepted", () => {
    new DistributedSemaphore({ key: "k", limit: 2, leaseTtlS: 5, acquireTimeoutS: 1, renewRatio: 0.5 }).close();
    new DistributedLock({
      key: "k",
      acquireTimeoutS: 1,
      leaseTtlS: 10,
      servers: [["h", 1]],
      shardingStrategy: () => 0,
      renewRatio: 0.5,
      serverReadTimeoutS: 23,
      connectTimeoutMs: 1000,
      tls: false,
      auth: "s",
      requestTimeoutMs: 1000,
      safetyMarginMs: 300,
      onLost: () => {},
    }).close();
  });
});

describe("units and types", () => {
  it.each([
    [
      "acquireTimeoutS",
      5000,
      /acquireTimeoutS is in whole seconds, from 0 to 3600 \(one hour\); got the number 5000\. If you meant 5000 ms, pass 5\./,
    ],
    ["leaseTtlS", 60_000, /If you meant 60000 ms, pass 60\./],
    ["acquireTimeoutS", 7200, /To wait without limit, pass Infinity/],
    ["leaseTtlS", 7200, /A lease is renewed in the background/],
    ["serverReadTimeoutS", 7200, /3600 is safe: renewals only come sooner/],
    ["acquireTimeoutS", 7_200_000, /one hour\); got the number 7200000\. To wait without limit/],
    ["leaseTtlS", "60", /got the string "60"\. Pass the number 60, not a string\./],
    ["serverReadTimeoutS", 23_000, /If you meant 23000 ms, pass 23\./],
    [
      "requestTimeoutMs",
      5,
      /requestTimeoutMs is in milliseconds, at least 50; got the number 5\. If you meant 5 s, pass 5000\./,
    ],
    ["connectTimeoutMs", 10, /If you meant 10 s, pass 10000/],
    ["renewRatio", "0.5", /got the string "0.5"/],
  ])("%s: %j is refused with a message about units", (name, value, message) => {
    refused(() => new DistributedLock(o({ key: "k", [name]: value })), message);
  });

  it("an hour is the longest wait or lease; per-call timeouts follow the same rule", async () => {
    new DistributedLock({ key: "k", acquireTimeoutS: 3600, leaseTtlS: 3600 }).close();
    const lock = new DistributedLock({ key: "k" });
    await expect(lock.acquire({ timeoutS: 10_000 })).rejects.toThrow(/If you meant 10000 ms, pass 10\./);
    await expect(lock.wait(5000)).rejects.toThrow(/pass 5\./);
    expect(rt.peers.length).toBe(0);
  });

  it("messages name the type of a wrong value", () => {
    refused(() => new DistributedLock(o({ key: 42 })), /key must be a string, got the number 42/);
    refused(() => new DistributedLock(o({ key: "k", servers: [["h", "6388"]] })), /got the string "6388"/);
    refused(() => new DistributedSemaphore(o({ key: "k", limit: null })), /got null/);
  });
});
