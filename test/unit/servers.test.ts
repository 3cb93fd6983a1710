/**
 * `servers` in every form: "host:port" strings (bracketed IPv6 included) and
 * [host, port] pairs, read into one form, so that sharding, the pool and
 * messages see the same server whichever form was written. Bad shapes are
 * refused at construction, naming the entry and the accepted forms, before
 * any connection. stats() takes one server in the same forms. Nothing here
 * reaches a server: connections go to a scripted runtime.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import { stats } from "../../src/lowlevel.ts";
import { openSettings } from "../../src/open.ts";
import { sharedPool } from "../../src/pool.ts";
import { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import { readServer, SERVER_FORMS, splitHostPort } from "../../src/servers.ts";
import { stableHashShard } from "../../src/sharding.ts";
import { type ScriptedRuntime, useScriptedRuntime } from "../support/scripted-peer.ts";

let rt: ScriptedRuntime;
beforeEach(() => {
  rt = useScriptedRuntime();
});

const o = (x: unknown): never => x as never;

function refusal(make: () => unknown): InvalidArgumentError {
  try {
    make();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error("not refused");
}

describe("splitHostPort", () => {
  it.each([
    ["10.0.0.1:6388", "10.0.0.1", 6388],
    ["db-1.internal:1", "db-1.internal", 1],
    ["[::1]:6388", "::1", 6388],
    ["[fd00::3]:65535", "fd00::3", 65535],
  ])("reads %s", (text, host, port) => {
    expect(splitHostPort(text)).toEqual({ ok: true, host, port });
  });

  it("uses the default port for a host alone only when given one", () => {
    expect(splitHostPort("db1", 6388)).toEqual({ ok: true, host: "db1", port: 6388 });
    expect(splitHostPort("[::1]", 6388)).toEqual({ ok: true, host: "::1", port: 6388 });
    expect(splitHostPort("db1")).toEqual({ ok: false, problem: "noPort" });
    expect(splitHostPort("[::1]")).toEqual({ ok: false, problem: "noPort" });
  });

  it.each([
    ["::1", "ipv6"],
    ["http://127.0.0.1:6388", "scheme"],
    ["[::1", "brackets"],
    ["[[::1]:6388", "brackets"],
    ["a]:6388", "brackets"],
    ["a[b:6388", "brackets"],
    ["[::1]]:6388", "brackets"],
    ["[a:b]:6388", "colon"],
    ["a b:6388", "space"],
    ["[::1]6388", "brackets"],
    [":6388", "form"],
    ["h:", "form"],
    ["h:0", "form"],
    ["h:65536", "form"],
    ["h:63.5", "form"],
    ["h:-1", "form"],
    ["h: 1", "form"],
    ["", "form"],
  ])("refuses %j (%s)", (text, problem) => {
    expect(splitHostPort(text)).toEqual({ ok: false, problem });
  });
});

describe("servers in every form", () => {
  it("reads strings, pairs, plain and readonly arrays into the same [host, port]", () => {
    const want = [
      ["10.0.0.1", 6388],
      ["::1", 6389],
    ];
    const forms: unknown[] = [
      ["10.0.0.1:6388", "[::1]:6389"],
      [
        ["10.0.0.1", 6388],
        ["::1", 6389],
      ],
      ["10.0.0.1:6388", ["::1", 6389]],
      Object.freeze(["10.0.0.1:6388", Object.freeze(["::1", 6389])]),
    ];
    for (const servers of forms) {
      expect(new DflockdClient({ servers: o(servers) }).servers).toEqual(want);
    }
  });

  it("sends every key to the same server index whichever form is used (stableHashShard, as the Go and Python clients)", () => {
    const strings = ["10.0.0.1:6388", "10.0.0.2:6388", "[fd00::3]:6388"];
    const pairs: Array<[string, number]> = [
      ["10.0.0.1", 6388],
      ["10.0.0.2", 6388],
      ["fd00::3", 6388],
    ];
    const shown = ["10.0.0.1:6388", "10.0.0.2:6388", "[fd00::3]:6388"];
    for (let i = 0; i < 200; i++) {
      const key = `job-${i}`;
      const a = new DistributedLock({ key, servers: strings }).server;
      const b = new DistributedLock({ key, servers: pairs }).server;
      const c = new DistributedSemaphore({ key, limit: 2, servers: [strings[0] as string, ...pairs.slice(1)] }).server;
      expect(a).toBe(shown[stableHashShard(key, 3)]);
      expect(b).toBe(a);
      expect(c).toBe(a);
    }
  });

  it("connects to the host and port a string names, IPv6 without its brackets", async () => {
    const lock = new DistributedLock({ key: "k", servers: ["[::1]:7001"], acquireTimeoutS: 0 });
    const p = lock.acquire();
    const peer = await rt.peer();
    expect(peer.target).toMatchObject({ host: "::1", port: 7001 });
    await peer.nextRequest();
    peer.send("timeout\n");
    expect(await p).toBe(false);
  });

  it("shares one pool entry between the two forms of one server", async () => {
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? "ok t1 10\n" : "ok\n");
    };
    const grant = async (lock: DistributedLock): Promise<void> => {
      expect(await lock.acquire()).toBe(true);
      await lock.release();
    };
    try {
      await grant(new DistributedLock({ key: "a", servers: ["127.0.0.1:7002"] }));
      // The same server as a pair: the idle connection is lent, no second connect.
      await grant(new DistributedLock({ key: "b", servers: [["127.0.0.1", 7002]] }));
      expect(rt.peers.length).toBe(1);
      expect((rt.peers[0]?.requests ?? []).map((r) => r.slice(0, 2).join(" "))).toEqual(["l a", "r a", "l b", "r b"]);
    } finally {
      sharedPool.closeIdle();
    }
  });
});

describe("bad servers are refused before anything connects", () => {
  it.each([
    ["a string without a port", ["db1"], /servers\[0\] is "db1": it has no port/],
    ["an empty host", [":6388"], /servers\[0\] is ":6388": the host must not be empty/],
    ["a port out of range", ["h:70000"], /servers\[0\] is "h:70000":.*port must be a whole number from 1 to 65535/],
    ["a bare IPv6 address", ["::1:6388"], /an IPv6 address goes in brackets, as \[::1\]:6388/],
    ["an unclosed bracket", ["[::1:6388"], /brackets go only around an IPv6 address, written \[address\]:port/],
    ["a bracket left in the host", ["[[::1]:6388"], /"\[\[::1\]:6388": brackets go only around an IPv6 address/],
    ["a closing bracket alone", ["a]:6388"], /"a\]:6388": brackets go only around an IPv6 address/],
    ["one colon in brackets", ["[a:b]:6388"], /an IPv6 address, which has at least two ":"/],
    [
      "a URL",
      ["http://127.0.0.1:6388"],
      /a URL is not a server: write host:port without a scheme \("127\.0\.0\.1:6388"\)/,
    ],
    ["a URL with a path", ["tcp://db1:6388/x"], /without a scheme \("db1:6388"\)/],
    ["a URL without a port", ["http://db1"], /: a URL is not a server: write host:port without a scheme;/],
    ["whitespace in the host", ["a b:1"], /the host must not contain whitespace/],
    ["a pair of three", [["h", 1, 2]], /servers\[0\] is \["h", 1, 2\]: a \[host, port\] pair has 2 items, this has 3/],
    ["a pair of one", [["h"]], /has 2 items, this has 1/],
    ["a fractional port", [["h", 6388.5]], /servers\[0\] is \["h", 6388.5\]: the port must be a whole number/],
    ["a port as text", [["h", "6388"]], /servers\[0\] is \["h", "6388"\]: the port must be a whole number/],
    ["the pair reversed", [[6388, "h"]], /the host must be a non-empty string/],
    ["an empty host in a pair", [["", 1]], /the host must be a non-empty string/],
    ["a bracketed host in a pair", [["[::1]", 1]], /an IPv6 address goes without brackets/],
    ["a closing bracket in a pair", [["db1]", 6388]], /the host must not contain "\[" or "\]"/],
    [
      "host:port as a pair's host",
      [["10.0.0.1:6388", 6388]],
      /\["10\.0\.0\.1:6388", 6388\]: the host looks like host:port: write "10\.0\.0\.1:6388" or \["10\.0\.0\.1", 6388\]/,
    ],
    ["host: as a pair's host", [["db1:", 7000]], /looks like host:port: write "db1:7000" or \["db1", 7000\]/],
    ["one colon, no host before it", [[":6388", 6388]], /the host has one ":", and an IPv6 address has at least two/],
    ["a number", [6388], /servers\[0\] is 6388: not a server/],
    ["an object", [{ host: "h", port: 1 }], /servers\[0\] is an object: not a server/],
    ["null", [null], /servers\[0\] is null: not a server/],
    ["the second entry", ["a:1", "b"], /servers\[1\] is "b": it has no port/],
  ])("%s", (_name, servers, message) => {
    for (const make of [
      () => new DistributedLock({ key: "k", servers: o(servers) }),
      () => new DistributedSemaphore({ key: "k", limit: 2, servers: o(servers) }),
      () => new DflockdClient({ servers: o(servers) }),
    ]) {
      const err = refusal(make);
      expect(err.message).toMatch(message);
      expect(err.message).toContain(SERVER_FORMS);
    }
    expect(rt.peers.length).toBe(0);
  });

  it("a string for the list says to put it in one", () => {
    expect(refusal(() => new DistributedLock({ key: "k", servers: o("a:1") })).message).toBe(
      'servers must be an array, got the string "a:1"; for one server write ["a:1"]',
    );
  });

  it("an empty list, or not a list, names the forms", () => {
    for (const servers of [[], 5, {}]) {
      expect(refusal(() => new DflockdClient({ servers: o(servers) })).message).toMatch(
        /^servers must be a non-empty array of servers, got .*; a server is "host:port"/,
      );
    }
  });

  it("a URL is told to drop its scheme, not to bracket an IPv6 address", () => {
    const err = refusal(() => new DflockdClient({ servers: ["http://127.0.0.1:6388"] }));
    expect(err.message).not.toMatch(/IPv6 address goes in brackets/);
  });

  it("the deprecated host option is checked as a pair's host is", () => {
    const host = (h: unknown) => refusal(() => new DistributedLock({ key: "k", host: o(h), port: 6388 })).message;
    expect(host("10.0.0.1:6388")).toBe(
      'host is "10.0.0.1:6388": it looks like host:port: give host "10.0.0.1" and port 6388, or servers: ["10.0.0.1:6388"]',
    );
    expect(host("[::1]")).toBe(
      'host is "[::1]": it must not contain "[" or "]" (an IPv6 address goes without them: "::1")',
    );
    expect(host("db1]")).toMatch(/must not contain "\[" or "\]"/);
    expect(host(":1")).toBe('host is ":1": it has one ":", and an IPv6 address has at least two');
    expect(host("a b")).toBe('host must be a non-empty string without whitespace, got "a b"');
    for (const ok of ["::1", "fe80::1%eth0", "db1"]) {
      expect(new DistributedLock({ key: "k", host: ok, port: 6388 }).server).toContain(ok);
    }
    expect(refusal(() => new DistributedLock({ key: "k", tls: { serverName: "a:1" } })).message).toBe(
      'tls.serverName is "a:1": it has one ":", and an IPv6 address has at least two',
    );
    expect(rt.peers.length).toBe(0);
  });

  it("readServer names where the server was given", () => {
    expect(() => readServer("x", "stats() server")).toThrow(/^stats\(\) server is "x": it has no port/);
  });
});

describe("one host check for every form", () => {
  /** Hosts good and bad; a bad one must be refused by every form, a good one by none. */
  const HOSTS = [
    "db1",
    "10.0.0.1",
    "::1",
    "fe80::1%eth0",
    "::ffff:10.0.0.1",
    "",
    "a b",
    "a\u00a0b",
    "[::1",
    "::1]",
    "[::1]",
    "db1]",
    "d[b1",
    "10.0.0.1:6388",
    "db1:",
    ":6388",
    "a:b",
    "a::b",
    "http://x",
    "tcp://db1:6388",
    "http://db1:1",
    "db1/x",
  ];
  const accepts = (f: () => unknown): boolean => {
    try {
      f();
      return true;
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgumentError);
      return false;
    }
  };
  const good = new Set(["db1", "10.0.0.1", "::1", "fe80::1%eth0", "::ffff:10.0.0.1", "a::b"]);

  it.each(HOSTS)("%j: the pair (fast path and not), the string and the host option agree", (host) => {
    const want = good.has(host);
    // eachServer's fast path, then readServer's checks (a pair of three items skips the fast path).
    expect(
      accepts(() => new DflockdClient({ servers: [[host, 6388]] })),
      "fast path",
    ).toBe(want);
    expect(
      accepts(() => readServer([host, 6388], "x")),
      "pair",
    ).toBe(want);
    const text = host.includes(":") ? `[${host}]:6388` : `${host}:6388`;
    expect(
      accepts(() => readServer(text, "x")),
      `string ${text}`,
    ).toBe(want);
    expect(
      accepts(() => new DistributedLock({ key: "k", host, port: 6388 })),
      "host option",
    ).toBe(want);
    expect(splitHostPort(text).ok, `split ${text}`).toBe(want);
  });

  it("a URL as a pair's host or as the host option is told it is a URL, never to write http:6388", () => {
    for (const host of ["http://db1", "tcp://db1:6388"]) {
      expect(() => readServer([host, 6388], "x")).toThrow(/must not contain "\/": a URL is not a server/);
      expect(() => new DistributedLock({ key: "k", host, port: 6388 })).toThrow(/a URL is not a server/);
      expect(() => readServer([host, 6388], "x")).not.toThrow(/http:6388/);
    }
  });

  it("host:port as connect()'s host names host and port, not the servers option connect() lacks", () => {
    expect(() => openSettings("10.0.0.1:6388", 6388, {}, 1000)).toThrow(
      /^host is "10\.0\.0\.1:6388": it looks like host:port: give host "10\.0\.0\.1" and port 6388$/,
    );
    expect(() => new DistributedLock({ key: "k", host: "10.0.0.1:6388" })).toThrow(
      /or servers: \["10\.0\.0\.1:6388"\]/,
    );
  });

  it("gives the host the string names to the pair check unchanged", () => {
    for (const host of good) {
      const text = host.includes(":") ? `[${host}]:6388` : `${host}:6388`;
      expect(readServer(text, "x")).toEqual([host, 6388]);
      expect(new DflockdClient({ servers: [text] }).servers).toEqual([[host, 6388]]);
    }
  });
});

describe("stats() takes one server in any form", () => {
  async function asked(call: Promise<unknown>, host: string, port: number): Promise<void> {
    const peer = await rt.peer();
    expect(peer.target).toMatchObject({ host, port });
    expect(await peer.nextRequest()).toEqual(["stats", "_", ""]);
    peer.send('ok {"connections":1,"locks":[],"semaphores":[],"idle_locks":[],"idle_semaphores":[]}\n');
    expect(await call).toMatchObject({ connections: 1 });
  }

  it.each([
    ["a string", "10.0.0.1:6388", "10.0.0.1", 6388],
    ["a bracketed IPv6 string", "[::1]:6390", "::1", 6390],
    ["a pair", ["10.0.0.2", 6389], "10.0.0.2", 6389],
    ["{ server: string }", { server: "10.0.0.3:1" }, "10.0.0.3", 1],
    ["{ server: pair }", { server: ["10.0.0.4", 2] }, "10.0.0.4", 2],
    ["{ servers: [one] }", { servers: ["10.0.0.5:3"] }, "10.0.0.5", 3],
    ["{ host, port }", { host: "10.0.0.6", port: 4, requestTimeoutMs: 1000 }, "10.0.0.6", 4],
    ["nothing", undefined, "127.0.0.1", 6388],
  ])("%s", async (_name, target, host, port) => {
    await asked(stats(o(target)), host, port);
  });

  it.each([
    ["a string without a port", "db1", /^stats\(\) server is "db1": it has no port/],
    ["a bad pair", ["h", 0], /^stats\(\) server is \["h", 0\]: the port must be/],
    ["a bad server option", { server: "h:x" }, /^stats\(\) server is "h:x"/],
    ["server and host", { server: "h:1", host: "h" }, /give either server or host\/port, not both/],
    ["servers and port", { servers: ["h:1"], port: 1 }, /give either servers or host\/port, not both/],
    ["server and servers", { server: "h:1", servers: ["h:1"] }, /give either server or servers/],
    ["two servers", { servers: ["a:1", "b:2"] }, /servers must list exactly one, got 2 servers.*DflockdClient/],
    ["no servers", { servers: [] }, /got 0 servers/],
    ["a bad entry of servers", { servers: [["h"]] }, /^stats\(\) servers\[0\] is \["h"\]/],
    ["a typo", { sever: "h:1" }, /unknown option "sever" \(did you mean "server"\?\)/],
  ])("refuses %s before connecting", async (_name, target, message) => {
    const err = await stats(o(target)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(message);
    expect(rt.peers.length).toBe(0);
  });
});
