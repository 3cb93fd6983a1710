/**
 * The server's settings (src/server/config.ts) read as dflockd v1.10.0 reads
 * its own: flags in both spellings, DFLOCKD_* variables only where no flag
 * was given, the auth token's order of precedence, and dflockd's checks.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, defaultConfig, parseFlags, tokenFromFile } from "../../src/server/config.ts";
import { delayOf } from "../../src/server/lines.ts";

const env =
  (vars: Record<string, string>) =>
  (name: string): string | undefined =>
    vars[name];

describe("parseFlags", () => {
  it("has dflockd's defaults", () => {
    expect(parseFlags([]).config).toEqual(defaultConfig());
    expect(defaultConfig()).toMatchObject({ port: 6388, readTimeoutS: 23, defaultLeaseTtlS: 33, maxLocks: 1024 });
  });

  it("takes --name value, -name=value, and booleans alone or with =true|false", () => {
    const p = parseFlags(["--port", "7000", "-read-timeout=5", "--auto-release-on-disconnect=false", "--debug"]);
    expect(p.config).toMatchObject({ port: 7000, readTimeoutS: 5, autoReleaseOnDisconnect: false });
    expect(() => parseFlags(["--debug=yes"])).toThrow(/invalid boolean value "yes" for -debug/);
    expect(() => parseFlags(["--port"])).toThrow(/flag needs an argument: -port/);
    expect(() => parseFlags(["--port", "x"])).toThrow('invalid value "x" for flag -port: parse error');
    expect(() => parseFlags(["--nope", "1"])).toThrow(/flag provided but not defined: -nope/);
    expect(() => parseFlags(["--nope"])).toThrow(/flag provided but not defined: -nope/);
    expect(() => parseFlags(["---port=1"])).toThrow(ConfigError);
  });

  it("reads integers, booleans and durations as Go's flag package and dflockd do, in dflockd's words", () => {
    // Each case checked against dflockd v1.10.0's own output.
    expect(parseFlags(["--port", "0x1F41"]).config.port).toBe(8001);
    expect(parseFlags(["--port", "1_0000"]).config.port).toBe(10000);
    expect(parseFlags(["--port", "0_7"]).config.port).toBe(7);
    expect(parseFlags(["--read-timeout", "010"]).config.readTimeoutS).toBe(8);
    expect(parseFlags(["--auto-release-on-disconnect=0"]).config.autoReleaseOnDisconnect).toBe(false);
    const refused: [string[], string][] = [
      [["--port", "99999999999999999999"], 'invalid value "99999999999999999999" for flag -port: value out of range'],
      [["--port", "08"], 'invalid value "08" for flag -port: parse error'],
      [["--port", "1__0"], 'invalid value "1__0" for flag -port: parse error'],
      [["--debug=yes"], 'invalid boolean value "yes" for -debug: parse error'],
      [["--shutdown-timeout", "9223372037"], "--shutdown-timeout must be >= 0 (got -2562047h47m16.709551616s)"],
      [["--gc-max-idle", "-3600"], "--gc-max-idle must be > 0 (got -1h0m0s)"],
      [["--gc-max-idle", "18446744073"], "--gc-max-idle must be > 0 (got -709.551616ms)"],
      [["--write-timeout", "-1"], "--write-timeout must be >= 0 (got -1s)"],
      [["---port=1"], "bad flag syntax: ---port=1"],
      [["--port", "99999999999999999999x"], "value out of range"],
      [["--port", "1__99999999999999999999"], "value out of range"],
      [["--port", "_1"], "parse error"],
      [["--port", "1_"], "parse error"],
    ];
    for (const [args, message] of refused) expect(() => parseFlags(args), args.join(" ")).toThrow(message);
    // A read timeout that wraps to 0.29 s is taken, as dflockd takes it.
    expect(parseFlags(["--read-timeout", "18446744074"]).config.readTimeoutS).toBeCloseTo(0.290448384, 9);
  });

  it("stops at `--` or at the first argument that is not a flag, as Go's flag package does", () => {
    expect(parseFlags(["--port", "7000", "--", "--port", "x"]).config.port).toBe(7000);
    expect(parseFlags(["--port", "7000", "extra", "--nope"]).config.port).toBe(7000);
  });

  it("fills what no flag set from DFLOCKD_* variables, ignoring values that do not parse", () => {
    const vars = env({
      DFLOCKD_PORT: "7001",
      DFLOCKD_READ_TIMEOUT_S: "x",
      DFLOCKD_MAX_LOCKS: "9",
      DFLOCKD_HOST: "0.0.0.0",
    });
    expect(parseFlags([], vars).config).toMatchObject({ port: 7001, readTimeoutS: 23, maxLocks: 9, host: "0.0.0.0" });
    expect(parseFlags(["--port", "7002"], vars).config.port).toBe(7002);
    const off = env({ DFLOCKD_AUTO_RELEASE_ON_DISCONNECT: "no" });
    expect(parseFlags([], off).config.autoReleaseOnDisconnect).toBe(false);
  });

  it("takes the auth token from DFLOCKD_AUTH_TOKEN, then --auth-token, then a file", () => {
    expect(parseFlags(["--auth-token", "flag"], env({ DFLOCKD_AUTH_TOKEN: "env" })).config.authToken).toBe("env");
    const both = parseFlags(["--auth-token", "flag", "--auth-token-file", "/f"]);
    expect([both.config.authToken, both.authTokenFile]).toEqual(["flag", undefined]);
    const file = parseFlags([], env({ DFLOCKD_AUTH_TOKEN_FILE: "/g" }));
    expect([file.config.authToken, file.authTokenFile]).toEqual([undefined, "/g"]);
    expect(tokenFromFile("  s3cret\n")).toBe("s3cret");
    expect(tokenFromFile(" \n")).toBeUndefined(); // an empty file: no auth, as dflockd
  });

  it("refuses what dflockd refuses", () => {
    expect(() => parseFlags(["--max-locks", "0"])).toThrow("--max-locks must be > 0 (got 0)");
    expect(() => parseFlags(["--read-timeout", "0"])).toThrow(/^--read-timeout must be > 0$/);
    expect(() => parseFlags(["--port", "70000"])).toThrow("--port must be 0-65535 (got 70000)");
    expect(() => parseFlags(["--shutdown-timeout", "-1"])).toThrow("--shutdown-timeout must be >= 0");
    expect(() => parseFlags(["--tls-cert", "c.pem"])).toThrow(
      "both --tls-cert and --tls-key must be provided together",
    );
    const tls = parseFlags(["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
    expect([tls.tlsCertFile, tls.tlsKeyFile]).toEqual(["c.pem", "k.pem"]);
  });
});

describe("delayOf", () => {
  it("caps a timer's delay at what JavaScript timers hold, so a long setting does not fire at once", () => {
    expect(delayOf(2)).toBe(2_000);
    expect(delayOf(3_000_000)).toBe(2 ** 31 - 1);
  });
});
