/**
 * `instanceof` across two copies of the error classes in one process (what a
 * CommonJS build and an ESM build of the package, loaded side by side, are):
 * src/errors.ts and src/mismatch.ts are loaded twice as separate module
 * instances, and each copy must recognise the other's errors, class by class.
 * So are the test server's errors (`dflockd-client/testing`'s `ConfigError`
 * and `TestServerStoppedError`, src/server/).
 */
import { beforeAll, describe, expect, it, vi } from "vitest";

type Errors = typeof import("../../src/errors.ts") &
  typeof import("../../src/mismatch.ts") &
  typeof import("../../src/leader.ts");

/** A fresh copy of the error modules: new module instances, new classes. */
async function load(): Promise<Errors> {
  vi.resetModules();
  const errors = await import("../../src/errors.ts");
  const mismatch = await import("../../src/mismatch.ts");
  const leader = await import("../../src/leader.ts");
  return { ...errors, ...mismatch, ...leader };
}

/** One instance of each class of the family, made by copy `m`. */
function samples(m: Errors) {
  return {
    LockError: new m.LockError("x", "BUSY"),
    AcquireTimeoutError: new m.AcquireTimeoutError("k", 1),
    InvalidArgumentError: new m.InvalidArgumentError("bad"),
    ConnectionError: new m.ConnectionError("down"),
    ProtocolError: new m.ProtocolError("garbled", "?"),
    ServerError: m.ServerError.fromStatus("error_max_locks", "l"),
    AuthError: new m.AuthError({ tokenSent: true }),
    LockLostError: new m.LockLostError("k", "gone"),
    LimitMismatchError: new m.LimitMismatchError("k", 2),
    NotLeaderError: new m.NotLeaderError("n", "10.0.0.2:6388"),
  };
}
type Name = keyof ReturnType<typeof samples>;

/** Each class and the classes it extends, in the family. */
const ANCESTRY: Record<Name, Name[]> = {
  LockError: ["LockError"],
  AcquireTimeoutError: ["AcquireTimeoutError", "LockError"],
  InvalidArgumentError: ["InvalidArgumentError", "LockError"],
  ConnectionError: ["ConnectionError", "LockError"],
  ProtocolError: ["ProtocolError", "LockError"],
  ServerError: ["ServerError", "LockError"],
  AuthError: ["AuthError", "ServerError", "LockError"],
  LockLostError: ["LockLostError", "LockError"],
  LimitMismatchError: ["LimitMismatchError", "ServerError", "LockError"],
  NotLeaderError: ["NotLeaderError", "ServerError", "LockError"],
};
const NAMES = Object.keys(ANCESTRY) as Name[];

describe("LockError's brand across two copies of the module", () => {
  let a: Errors;
  let b: Errors;
  beforeAll(async () => {
    a = await load();
    b = await load();
  });

  it("loads two distinct copies", () => {
    expect(a.LockError).not.toBe(b.LockError);
    expect(a.LimitMismatchError).not.toBe(b.LimitMismatchError);
    expect(Object.getPrototypeOf(new a.LockError("x")) === b.LockError.prototype).toBe(false);
  });

  it("recognises each class and its ancestors, and no other class, both ways", () => {
    for (const [from, to] of [
      [a, b],
      [b, a],
      [a, a],
    ] as const) {
      const made = samples(from);
      for (const name of NAMES) {
        for (const cls of NAMES) {
          expect(made[name] instanceof to[cls], `${name} instanceof ${cls}`).toBe(ANCESTRY[name].includes(cls));
        }
      }
    }
  });

  it("recognises nothing else", () => {
    const brandless = [
      undefined,
      null,
      0,
      "LockError",
      {},
      { name: "LockError", code: "BUSY", message: "x" },
      new Error("x"),
      new TypeError("x"),
      Object.create(null),
      () => {},
    ];
    for (const m of [a, b]) {
      for (const cls of NAMES) {
        for (const [i, v] of brandless.entries())
          expect(v instanceof m[cls], `brandless[${i}] instanceof ${cls}`).toBe(false);
      }
    }
  });

  it("checks a user's own subclass by its prototype chain only, while its instances keep the family's brands", () => {
    class Mine extends a.AcquireTimeoutError {}
    const mine = new Mine("k", 1);
    expect(mine instanceof Mine).toBe(true);
    expect(mine instanceof b.AcquireTimeoutError).toBe(true);
    expect(mine instanceof b.LockError).toBe(true);
    // Mine has no brand of its own: an AcquireTimeoutError of either copy is not a Mine.
    expect(new a.AcquireTimeoutError("k", 1) instanceof Mine).toBe(false);
    expect(new b.AcquireTimeoutError("k", 1) instanceof Mine).toBe(false);
  });

  it("puts the brand on the prototypes, not on each instance", () => {
    for (const err of Object.values(samples(a))) expect(Object.getOwnPropertySymbols(err)).toEqual([]);
    expect(Object.getOwnPropertySymbols(a.AuthError.prototype).map(String)).toEqual([
      "Symbol(dflockd-client:AuthError)",
    ]);
  });
});

type ServerErrors = typeof import("../../src/server/config.ts") & typeof import("../../src/server/test-server.ts");

/** A fresh copy of the test server's error modules. */
async function loadServer(): Promise<ServerErrors> {
  vi.resetModules();
  const config = await import("../../src/server/config.ts");
  const testServer = await import("../../src/server/test-server.ts");
  return { ...config, ...testServer };
}

describe("dflockd-client/testing's errors across two copies of the module", () => {
  let a: ServerErrors;
  let b: ServerErrors;
  let errors: Errors;
  beforeAll(async () => {
    a = await loadServer();
    b = await loadServer();
    errors = await load();
  });
  const NAMES = ["ConfigError", "TestServerStoppedError"] as const;
  const make = (m: ServerErrors) => ({
    ConfigError: new m.ConfigError("readTimeoutS must be > 0"),
    TestServerStoppedError: new m.TestServerStoppedError(),
  });

  it("loads two distinct copies", () => {
    expect(a.ConfigError).not.toBe(b.ConfigError);
    expect(a.TestServerStoppedError).not.toBe(b.TestServerStoppedError);
  });

  it("recognises each class, and no other, both ways", () => {
    for (const [from, to] of [
      [a, b],
      [b, a],
      [a, a],
    ] as const) {
      const made = make(from);
      for (const name of NAMES) {
        for (const cls of NAMES) expect(made[name] instanceof to[cls], `${name} instanceof ${cls}`).toBe(name === cls);
        expect(made[name] instanceof Error).toBe(true);
        expect(made[name] instanceof errors.LockError).toBe(false);
      }
    }
  });

  it("recognises nothing else, and a user's subclass by its prototype chain only", () => {
    for (const v of [undefined, null, {}, new Error("x"), new errors.LockError("x"), { name: "ConfigError" }]) {
      for (const cls of NAMES) expect(v instanceof a[cls]).toBe(false);
    }
    class Mine extends a.ConfigError {}
    expect(new Mine("x") instanceof b.ConfigError).toBe(true);
    expect(new b.ConfigError("x") instanceof Mine).toBe(false);
  });

  it("brands the prototypes under the same Symbol.for() scheme as the LockError family", () => {
    expect(Object.getOwnPropertySymbols(a.ConfigError.prototype).map(String)).toEqual([
      "Symbol(dflockd-client:ConfigError)",
    ]);
    expect(Object.getOwnPropertySymbols(a.TestServerStoppedError.prototype).map(String)).toEqual([
      "Symbol(dflockd-client:TestServerStoppedError)",
    ]);
    for (const err of Object.values(make(a))) expect(Object.getOwnPropertySymbols(err)).toEqual([]);
  });
});
