/** The command line's pure parts: arguments, server lists, options from env and files, output formats. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_GRACE_S, parseArgs, UsageError } from "../../src/cli/args.ts";
import { clientOptions, InputError, parseServers } from "../../src/cli/config.ts";
import type { CliHost, OutputLike } from "../../src/cli/host.ts";
import { exitStatus } from "../../src/cli/run.ts";
import { printable, statsJson, statsTable } from "../../src/cli/stats.ts";
import { StatusLine, statusLine } from "../../src/cli/status.ts";
import { DflockdClient, type ServerStats } from "../../src/client.ts";
import { ConnectionError } from "../../src/errors.ts";

const usage = (argv: string[]): string => {
  try {
    parseArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${argv.join(" ")}`);
};

describe("parseArgs", () => {
  it("reads lock and sem with options before or after the key, in both spellings", () => {
    const p = parseArgs(["lock", "--timeout=0", "deploy", "--lease", "30", "-q", "--", "make", "--timeout", "1"]);
    expect(p).toMatchObject({
      kind: "lock",
      keys: ["deploy"],
      command: ["make", "--timeout", "1"],
      graceS: DEFAULT_GRACE_S,
      wait: false,
      busyCode: 75,
    });
    expect(p.kind === "lock" && p.common).toMatchObject({ timeoutMs: 0, leaseS: 30, quiet: true, tls: false });
    const s = parseArgs(["sem", "enc", "--limit", "4", "--grace=0", "--tls-ca", "ca.pem", "--", "x"]);
    expect(s).toMatchObject({ kind: "sem", limit: 4, graceS: 0 });
    expect(s.kind === "sem" && s.common).toMatchObject({ tls: true, tlsCa: "ca.pem" });
  });

  it("takes a key that begins with a dash through --key, in both spellings", () => {
    expect(parseArgs(["lock", "--key", "-nightly", "--", "x"])).toMatchObject({ keys: ["-nightly"] });
    expect(parseArgs(["sem", "--key=--", "--limit", "2", "--", "x"])).toMatchObject({ keys: ["--"], limit: 2 });
    expect(parseArgs(["lock", "--key=a=b", "--", "x"])).toMatchObject({ keys: ["a=b"] });
    expect(usage(["lock", "-nightly", "--", "x"])).toContain("write --key=-nightly");
    expect(usage(["lock", "k", "--key", "k", "--", "x"])).toContain('the key "k" is given twice');
    expect(usage(["stats", "--key", "k"])).toContain("unknown option --key");
  });

  it("reads help, version and stats", () => {
    expect(parseArgs([])).toEqual({ kind: "help", topic: undefined });
    expect(parseArgs(["help", "sem"])).toEqual({ kind: "help", topic: "sem" });
    expect(parseArgs(["lock", "--help"])).toEqual({ kind: "help", topic: "lock" });
    expect(parseArgs(["-V"])).toEqual({ kind: "version" });
    expect(parseArgs(["stats", "--json", "--servers", "a:1"])).toMatchObject({ kind: "stats", json: true });
  });

  it("refuses what cannot be meant, saying what to write", () => {
    expect(usage(["lock", "k", "make"])).toContain("dflockd-client lock k -- make");
    expect(usage(["lock", "a", "b", "--", "x"])).toContain("one key only");
    expect(usage(["lock", "k", "--json", "--", "x"])).toContain("--json is for stats");
    expect(usage(["lock", "k", "--timeout", "--", "x"])).toContain("--timeout needs a value");
    expect(usage(["lock", "k", "--timeout", "-1", "--", "x"])).toContain("--timeout takes a whole number");
    expect(usage(["lock", "k", "--timeout", "1", "--timeout", "2", "--", "x"])).toContain("given twice");
    expect(usage(["lock", "k", "--timeout", "25h", "--", "x"])).toContain("from 0 to 86400 seconds (24h)");
    expect(usage(["lock", "k", "--tls=yes", "--", "x"])).toContain("takes no value");
    expect(usage(["lock", "k", "--tls-ca="])).toContain("needs a file name");
    expect(usage(["sem", "k", "--limit", "0", "--", "x"])).toContain("--limit must be from 1");
    expect(usage(["stats", "k"])).toContain("stats takes no key");
    expect(usage(["lock", "k", "--", ""])).toContain("empty");
    expect(usage(["stat"])).toContain("did you mean stats?");
  });

  it("reads --timeout with units, a bare number as seconds; refuses other spellings", () => {
    const ms = (t: string) => {
      const p = parseArgs(["lock", "k", "--timeout", t, "--", "x"]);
      return p.kind === "lock" ? p.common.timeoutMs : undefined;
    };
    expect([ms("0"), ms("5"), ms("500ms"), ms("90s"), ms("5m"), ms("2h"), ms("24h")]).toEqual([
      0, 5000, 500, 90_000, 300_000, 7_200_000, 86_400_000,
    ]);
    for (const bad of ["5 s", "1.5", "1.5s", "-1", "5d", "5sec", "ms", ""]) {
      expect(usage(["lock", "k", `--timeout=${bad}`, "--", "x"])).toContain(
        "--timeout takes a whole number of seconds, or one with a unit (500ms, 90s, 5m, 2h)",
      );
    }
    // The lease and the grace stay plain seconds.
    expect(usage(["lock", "k", "--lease", "5s", "--", "x"])).toContain("seconds, as a plain number");
  });

  it("reads --wait, and refuses it with --timeout", () => {
    expect(parseArgs(["lock", "k", "--wait", "--", "x"])).toMatchObject({ wait: true });
    expect(parseArgs(["sem", "k", "--limit", "2", "--wait"])).toMatchObject({ wait: true, command: [] });
    expect(usage(["lock", "k", "--wait", "--timeout", "5", "--", "x"])).toContain("--wait and --timeout together");
    expect(usage(["lock", "k", "--wait=yes", "--", "x"])).toContain("--wait takes no value");
    expect(usage(["stats", "--wait"])).toContain("unknown option --wait");
  });

  it("reads --conflict-exit-code from 0 to 255", () => {
    expect(parseArgs(["lock", "k", "--conflict-exit-code", "0", "--", "x"])).toMatchObject({ busyCode: 0 });
    expect(parseArgs(["sem", "k", "--limit=1", "--conflict-exit-code=255", "--", "x"])).toMatchObject({
      busyCode: 255,
    });
    expect(usage(["lock", "k", "--conflict-exit-code", "256", "--", "x"])).toContain(
      "--conflict-exit-code must be from 0 to 255",
    );
    expect(usage(["lock", "k", "--conflict-exit-code", "-1", "--", "x"])).toContain("takes a whole number");
  });

  it("without a command, holds: no command is no mistake, but an empty one after -- is", () => {
    expect(parseArgs(["lock", "k"])).toMatchObject({ kind: "lock", keys: ["k"], command: [] });
    expect(parseArgs(["sem", "k", "--limit", "3"])).toMatchObject({ kind: "sem", command: [], limit: 3 });
    expect(usage(["lock", "k", "--"])).toContain('no command after "--" (to hold the lock until SIGINT or SIGTERM');
    expect(usage(["lock", "k", "make"])).toContain("dflockd-client lock k -- make");
  });

  it("collects --key given more than once, the KEY word first", () => {
    expect(parseArgs(["lock", "a", "--key", "b", "--key=c", "--", "x"])).toMatchObject({ keys: ["a", "b", "c"] });
    expect(parseArgs(["lock", "--key", "b", "--key", "a"])).toMatchObject({ keys: ["b", "a"] });
    expect(usage(["lock", "--key", "a", "--key", "a"])).toContain('the key "a" is given twice');
  });

  it("refuses every way of putting a secret on the command line", () => {
    for (const flag of ["--auth", "--auth-token", "--token", "--secret", "--password", "--auth-token=abc"]) {
      const m = usage(["lock", "k", flag, "--", "x"]);
      expect(m).toContain("DFLOCKD_AUTH_TOKEN");
      expect(m).not.toContain("abc");
    }
  });
});

describe("parseServers", () => {
  it("reads host:port lists, default ports and bracketed IPv6", () => {
    expect(parseServers("a:1, b ,[::1]:7,[fe80::1]", "x")).toEqual([
      ["a", 1],
      ["b", 6388],
      ["::1", 7],
      ["fe80::1", 6388],
    ]);
  });

  it("refuses empty entries, bad ports and bare IPv6", () => {
    for (const [text, message] of [
      ["a:1,", "empty entry"],
      ["a:0", "port 1 to 65535"],
      ["a:65536", "port 1 to 65535"],
      ["a:x", "is not host:port"],
      [":1", "is not host:port"],
      ["::1", "put an IPv6 address in brackets"],
      ["[::1", '--servers: "[::1": brackets go only around an IPv6 address, written [address]:port'],
      ["[[::1]:6388", '--servers: "[[::1]:6388": brackets go only around an IPv6 address'],
      ["a]:6388", '--servers: "a]:6388": brackets go only around an IPv6 address'],
      ["a]", '--servers: "a]": brackets go only around an IPv6 address'],
      ["[a:b]", 'a host in brackets is an IPv6 address, which has at least two ":"'],
      ["a\u00a0b", "the host must not contain whitespace or control characters"],
      [
        "http://127.0.0.1:6388",
        '--servers: "http://127.0.0.1:6388": a URL is not a server: write host:port without a scheme ("127.0.0.1:6388")',
      ],
    ]) {
      expect(() => parseServers(text as string, "--servers")).toThrow(message as string);
    }
    expect(() => parseServers("http://127.0.0.1:6388", "--servers")).not.toThrow(/IPv6/);
  });

  it("accepts a server exactly when the API does (the same parser and host check)", () => {
    for (const text of [
      "db1:6388",
      "[::1]:6388",
      "[fe80::1%eth0]:1",
      "[[::1]:6388",
      "a]:6388",
      "[a:b]:6388",
      "[::1]]:6388",
      "http://127.0.0.1:6388",
      "a\u00a0b:1",
      "::1:6388",
      "h:0",
    ]) {
      let api = true;
      try {
        new DflockdClient({ servers: [text] });
      } catch {
        api = false;
      }
      let cli: Array<[string, number]> | undefined;
      try {
        cli = parseServers(text, "--servers");
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
      }
      expect(cli !== undefined, text).toBe(api);
      // What the command line reads, the API takes as a pair (the command line hands it pairs).
      if (cli !== undefined) expect(new DflockdClient({ servers: cli }).servers, text).toEqual(cli);
    }
  });
});

describe("clientOptions", () => {
  const common = {
    servers: undefined,
    timeoutMs: undefined,
    leaseS: undefined,
    tls: false,
    tlsCa: undefined,
    authTokenFile: undefined,
    quiet: false,
    fenceFromToken: false,
  };
  const host = (env: Record<string, string>, files: Record<string, string>): CliHost =>
    ({
      env: (n: string) => env[n],
      readTextFile: async (p: string) => {
        const text = files[p];
        if (text === undefined) throw new Error("No such file");
        return text;
      },
    }) as unknown as CliHost;

  it("takes servers and the token from flags first, else the environment", async () => {
    const env = { DFLOCKD_SERVERS: "e:1", DFLOCKD_AUTH_TOKEN: "from-env" };
    expect(await clientOptions(common, host(env, {}))).toMatchObject({ servers: [["e", 1]], auth: "from-env" });
    const flags = { ...common, servers: "f:2", authTokenFile: "t", tlsCa: "ca", tls: true, leaseS: 9 };
    expect(await clientOptions(flags, host(env, { t: "from-file\n", ca: "PEM" }))).toMatchObject({
      servers: [["f", 2]],
      auth: "from-file",
      tls: { ca: "PEM" },
      leaseTtlS: 9,
    });
  });

  it("--fence-from-token is for lock and sem, and sets the client's fenceFromToken", async () => {
    const p = parseArgs(["lock", "k", "--fence-from-token", "--", "x"]);
    expect(p.kind === "lock" && p.common.fenceFromToken).toBe(true);
    expect(parseArgs(["sem", "k", "--limit", "2"])).toMatchObject({ common: { fenceFromToken: false } });
    expect(usage(["stats", "--fence-from-token"])).toContain("unknown option --fence-from-token");
    expect(await clientOptions({ ...common, fenceFromToken: true }, host({}, {}))).toMatchObject({
      fenceFromToken: true,
    });
    expect(await clientOptions(common, host({}, {}))).not.toHaveProperty("fenceFromToken");
  });

  it("refuses an empty token file and names a file it cannot read", async () => {
    await expect(clientOptions({ ...common, authTokenFile: "t" }, host({}, { t: "\n" }))).rejects.toThrow(UsageError);
    const err = await clientOptions({ ...common, tlsCa: "nope" }, host({}, {})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe("--tls-ca: cannot read nope: No such file");
  });
});

describe("output", () => {
  const ok: ServerStats = {
    host: "::1",
    port: 6388,
    ok: true,
    stats: {
      connections: 1,
      locks: [{ key: "a\u001b[31m", owner_conn_id: 3, lease_expires_in_s: 12.345, waiters: 2 }],
      semaphores: [{ key: "s", limit: 4, holders: 1, waiters: 0 }],
      idle_locks: [],
      idle_semaphores: [{ key: "i", idle_s: 1 }],
    },
  };
  const down: ServerStats = { host: "b", port: 1, ok: false, error: new ConnectionError("b:1: refused") };

  it("prints a table, escaping control characters in keys", () => {
    expect(statsTable([ok, down])).toBe(
      [
        "[::1]:6388  1 connection, 1 idle key",
        "  LOCK         OWNER   LEASE LEFT  WAITERS",
        "  a\\u001b[31m  conn 3  12.3s       2",
        "  SEMAPHORE  HOLDERS  WAITERS",
        "  s          1/4      0",
        "b:1  no answer: b:1: refused",
        "",
      ].join("\n"),
    );
    expect(printable("\u0085x\u007f")).toBe("\\u0085x\\u007f");
  });

  it("prints JSON with one entry per server", () => {
    expect(JSON.parse(statsJson([ok, down]))).toEqual([
      { server: "[::1]:6388", ok: true, stats: ok.stats },
      { server: "b:1", ok: false, error: { code: "CONNECTION", message: "b:1: refused" } },
    ]);
  });

  it("cuts the status line to the terminal's width", () => {
    const text = { what: 'lock "deploy"', server: "10.0.0.5:6388" };
    expect(statusLine(text, 3, 2)).toBe('waiting for lock "deploy" on 10.0.0.5:6388: 3s, 2 ahead');
    expect(statusLine(text, 3, undefined)).toBe('waiting for lock "deploy" on 10.0.0.5:6388: 3s');
    expect(statusLine(text, 3, 2, 20)).toBe('waiting for lock "…');
  });

  it("exits 128+N for a signal, else the code", () => {
    const numbers = { signalNumber: (s: string) => ({ SIGTERM: 15 })[s] };
    expect(exitStatus({ code: null, signal: "SIGTERM" }, numbers)).toBe(143);
    expect(exitStatus({ code: 143, signal: "SIGTERM" }, numbers)).toBe(143);
    expect(exitStatus({ code: 9, signal: null }, numbers)).toBe(9);
    expect(exitStatus({ code: 137, signal: "SIGWHAT" }, numbers)).toBe(137);
  });
});

describe("StatusLine", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("redraws every second; waiters ahead only go down; erased on stop", async () => {
    vi.useFakeTimers();
    const written: string[] = [];
    const out: OutputLike = { isTerminal: true, columns: () => undefined, write: async (t) => void written.push(t) };
    const counts = [3, 4, 6, 1];
    const line = new StatusLine(out, { what: 'lock "k"', server: "h:1" }, async () => counts.shift());
    line.start();
    await vi.advanceTimersByTimeAsync(3_100);
    const shown = written.map((w) => w.replace("\r\u001b[2K", ""));
    // 3, then 4 (the first answer may have come before this process queued), then 6 (someone joined
    // behind: still 4), then 1.
    expect(shown.filter((s) => s.includes("ahead")).map((s) => s.slice(s.lastIndexOf(":") + 2))).toEqual([
      "0s, 3 ahead",
      "1s, 3 ahead",
      "1s, 4 ahead",
      "2s, 4 ahead",
      "2s, 4 ahead",
      "3s, 4 ahead",
      "3s, 1 ahead",
    ]);
    await line.stop();
    expect(written.at(-1)).toBe("\r\u001b[2K");
    const before = written.length;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(written.length).toBe(before);
  });
});
