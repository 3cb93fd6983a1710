/**
 * `dflockd-client serve`'s own logic, on a fake host with a fake listener:
 * flags and variables, files, the lines it logs, configuration errors, and
 * the signal rules of a drain. test/cli/serve.test.ts runs the real thing.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { parseArgs } from "../../src/cli/args.ts";
import { DEVELOPMENT_NOTE, DFLOCKD_VERSION, helpText, serveFlags } from "../../src/cli/help.ts";
import type { CliHost, ForwardedSignal } from "../../src/cli/host.ts";
import { serve, slogLine } from "../../src/cli/serve.ts";
import { defaultConfig, FLAG_NAMES } from "../../src/server/config.ts";
import type { ConnEvents, ListenOptions, ServerConn } from "../../src/server/listen.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const encode = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A host whose listener hands connections to the test, and whose signals the test sends. */
function fakeHost(env: Record<string, string> = {}, files: Record<string, string> = {}, listenError?: Error) {
  const handlers = new Map<ForwardedSignal, () => void>();
  const out: string[] = [];
  const err: string[] = [];
  const listened: ListenOptions[] = [];
  let accept: ((c: ServerConn) => ConnEvents) | undefined;
  let listenerClosed = false;
  const output = (sink: string[]) => ({
    isTerminal: false,
    columns: () => undefined,
    write: async (t: string) => void sink.push(t),
  });
  const host = {
    describe: "fake",
    args: [],
    env: (n: string) => env[n],
    envDenied: () => false,
    stdinIsTerminal: false,
    readTextFile: async (p: string) => {
      const text = files[p];
      if (text === undefined) throw new Error(`${p}: no such file`);
      return text;
    },
    stdout: output(out),
    stderr: output(err),
    spawn: () => {
      throw new Error("serve starts no command");
    },
    onSignal: (s: ForwardedSignal, h: () => void) => {
      handlers.set(s, h);
      return () => handlers.delete(s);
    },
    signalNumber: () => undefined,
    listen: async (options: ListenOptions, a: (c: ServerConn) => ConnEvents) => {
      if (listenError !== undefined) throw listenError;
      listened.push(options);
      accept = a;
      return {
        port: options.port === 0 ? 40123 : options.port,
        close: async () => {
          listenerClosed = true;
        },
      };
    },
    exit: () => {
      throw new Error("exit");
    },
  } as CliHost;
  /** A connection from a peer: what it was sent, and whether the server closed it. */
  const connect = () => {
    if (accept === undefined) throw new Error("not listening");
    const got: string[] = [];
    let events: ConnEvents | undefined;
    const conn = {
      closed: false,
      write: (b: Uint8Array) => void got.push(new TextDecoder().decode(b)),
      queued: 0,
      flushed: async () => {},
      pause: () => {},
      resume: () => {},
      close: () => {
        conn.closed = true;
        events?.closed();
      },
      destroy: () => conn.close(),
    };
    events = accept(conn);
    const send = (lines: string): void => events?.data(encode(lines));
    /** Send one request and resolve with its reply. */
    const ask = async (request: string): Promise<string> => {
      const before = got.length;
      send(request);
      await vi.waitFor(() => expect(got.length).toBeGreaterThan(before));
      return got[before] as string;
    };
    return { got, conn, send, ask, hangUp: () => conn.close() };
  };
  return {
    host,
    handlers,
    out: () => out.join(""),
    err: () => err.join(""),
    listened,
    connect,
    listenerClosed: () => listenerClosed,
  };
}

describe("serve", () => {
  it("is a subcommand of its own, with help; dflockd's flags go to the server's parser untouched", () => {
    expect(parseArgs(["serve", "--port", "0", "--auth-token", "x"])).toEqual({
      kind: "serve",
      flags: ["--port", "0", "--auth-token", "x"],
    });
    expect(parseArgs(["help", "serve"])).toEqual({ kind: "help", topic: "serve" });
    expect(() => parseArgs(["serv"])).toThrow("did you mean serve?");
    expect(helpText(undefined)).toContain("dflockd-client serve");
    expect(helpText("serve")).toContain(serveFlags());
  });

  it("lists every flag dflockd takes, with dflockd's defaults", () => {
    const text = serveFlags();
    for (const name of FLAG_NAMES) expect(text).toContain(`--${name}`);
    const d = defaultConfig();
    for (const [flag, value] of [
      ["--port N", d.port],
      ["--default-lease-ttl SECONDS", d.defaultLeaseTtlS],
      ["--read-timeout SECONDS", d.readTimeoutS],
      ["--shutdown-timeout SECONDS", d.shutdownTimeoutS],
      ["--max-locks N", d.maxLocks],
      ["--gc-max-idle SECONDS", d.gcMaxIdleS],
    ] as const) {
      expect(text).toMatch(new RegExp(`${flag} +.*\\(default ${value}\\)`));
    }
  });

  it("names the dflockd that package.json pins, and says no 'listening' before it listens", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { config: { dflockdVersion: string } };
    expect(DFLOCKD_VERSION).toBe(pkg.config.dflockdVersion);
    expect(DEVELOPMENT_NOTE).toContain(`go install github.com/mtingers/dflockd/cmd/dflockd@${DFLOCKD_VERSION}`);
    expect(DEVELOPMENT_NOTE).not.toMatch(/listening/i);
  });

  it("writes lines as Go's slog text handler does", () => {
    const line = slogLine(new Date(), "INFO", "listening", { addr: "127.0.0.1:6388" });
    expect(line).toMatch(
      /^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) level=INFO msg=listening addr=127\.0\.0\.1:6388\n$/,
    );
    expect(slogLine(new Date(), "INFO", "shutting down, draining connections")).toContain(
      'msg="shutting down, draining connections"\n',
    );
    expect(slogLine(new Date(), "ERROR", "server error", { err: 'a="b"' })).toContain(
      'level=ERROR msg="server error" err="a=\\"b\\""',
    );
  });

  it("refuses a bad flag or setting as dflockd does: 'configuration error', status 1, usage after a flag error", async () => {
    const f = fakeHost();
    expect(await serve(["--port", "99999"], f.host)).toBe(1);
    expect(f.err()).toBe("configuration error: --port must be 0-65535 (got 99999)\n");
    const g = fakeHost();
    expect(await serve(["--bogus=1"], g.host)).toBe(1);
    expect(g.err()).toMatch(/^flag provided but not defined: -bogus\nUsage of dflockd-client serve:\n {2}--host ADDR/);
    expect(g.err()).toMatch(/\nconfiguration error: flag provided but not defined: -bogus\n$/);
    const h = fakeHost();
    expect(await serve(["--auth-token-file", "/no/token"], h.host)).toBe(1);
    expect(h.err()).toBe('configuration error: reading auth token file "/no/token": /no/token: no such file\n');
    for (const x of [f, g, h]) expect(x.listened).toEqual([]);
  });

  it("takes a setting from its DFLOCKD_ variable when no flag gives it, and the flag over the variable", async () => {
    for (const [flags, port] of [
      [[], 7001],
      [["--port", "7002"], 7002],
    ] as const) {
      const f = fakeHost({ DFLOCKD_PORT: "7001", DFLOCKD_HOST: "127.0.0.2" });
      const done = serve(flags, f.host);
      await vi.waitFor(() => expect(f.err()).toContain("msg=listening"));
      expect(f.listened).toMatchObject([{ host: "127.0.0.2", port }]);
      expect(f.err()).toContain(`addr=127.0.0.2:${port}\n`);
      f.handlers.get("SIGTERM")?.();
      expect(await done).toBe(0);
    }
  });

  it("fails with status 1 and a 'server error' line when it cannot listen", async () => {
    const f = fakeHost({}, {}, new Error("EADDRINUSE"));
    expect(await serve([], f.host)).toBe(1);
    expect(f.err()).toMatch(/level=ERROR msg="server error" err="listen: EADDRINUSE"\n$/);
    expect(f.handlers.size).toBe(0);
  });

  it("drains on the first signal, keeps every later one caught, and ends when the last connection closes", async () => {
    const f = fakeHost({}, { "/token": " s3cret \n" });
    const done = serve(["--port", "0", "--auth-token-file", "/token"], f.host);
    let ended = false;
    void done.then(() => {
      ended = true;
    });
    await vi.waitFor(() => expect(f.err()).toMatch(/msg=listening addr=127\.0\.0\.1:40123\n$/));
    expect(f.err().indexOf(DEVELOPMENT_NOTE)).toBe(0);
    const holder = f.connect();
    holder.send("auth\n_\ns3cret\nl\nk\n10\n");
    await vi.waitFor(() => expect(holder.got.join("")).toMatch(/^ok\nok \S+ 33\n$/));
    const waiter = f.connect();
    waiter.send("auth\n_\ns3cret\nl\nk\n10\n");
    await vi.waitFor(async () => expect(await holder.ask("stats\n_\n\n")).toContain('"waiters":1'));
    expect(waiter.got).toEqual(["ok\n"]);

    f.handlers.get("SIGTERM")?.();
    await vi.waitFor(() => expect(waiter.got).toEqual(["ok\n", "error\n"]));
    expect(f.err()).toMatch(/msg="shutting down, draining connections"\n$/);
    expect(f.listenerClosed()).toBe(true);
    // Still caught, as signal.NotifyContext leaves them until dflockd exits: a second one must not kill.
    expect([...f.handlers.keys()].sort()).toEqual(["SIGINT", "SIGTERM"]);
    f.handlers.get("SIGINT")?.();
    f.handlers.get("SIGTERM")?.();
    expect(await holder.ask("stats\n_\n\n")).toMatch(/^ok \{"connections":2,/);
    waiter.hangUp();
    await vi.waitFor(async () => expect(await holder.ask("stats\n_\n\n")).toMatch(/^ok \{"connections":1,/));
    expect(ended).toBe(false);
    holder.hangUp();
    expect(await done).toBe(0);
  });

  it("--version and --help print and exit 0 without listening", async () => {
    const f = fakeHost();
    expect(await serve(["--version"], f.host)).toBe(0);
    expect(f.out()).toMatch(/^dflockd-client \d+\.\d+\.\d+ \(fake\)\n$/);
    const g = fakeHost();
    expect(await serve(["--port", "1", "-h"], g.host)).toBe(0);
    expect(g.out()).toBe(helpText("serve"));
    expect([...f.listened, ...g.listened]).toEqual([]);
  });
});
