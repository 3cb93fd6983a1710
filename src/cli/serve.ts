/**
 * `dflockd-client serve`: the dflockd-compatible server of `src/server` as a
 * process, started and stopped as dflockd's own `main` does it. dflockd's
 * flags and `DFLOCKD_*` variables; slog-style lines on stderr
 * (`level=INFO msg=listening addr=...`); on SIGINT or SIGTERM a graceful
 * drain and status 0; a bad flag or setting is a `configuration error` and
 * status 1.
 *
 * @module
 */
import { ConfigError, type ParsedFlags, parseFlags, type ServerConfig, tokenFromFile } from "../server/config.ts";
import { delayOf } from "../server/lines.ts";
import { type RunningServer, startServer } from "../server/server.ts";
import { hostPort } from "../transport.ts";
import { VERSION } from "../version.ts";
import { EXIT } from "./exit.ts";
import { DEVELOPMENT_NOTE, serveFlags, serveHelp } from "./help.ts";
import type { CliHost } from "./host.ts";

/** Flag errors of Go's flag package, after which dflockd also prints its usage. */
const FLAG_SYNTAX = /^(flag provided but not defined|flag needs an argument|invalid (boolean )?value|bad flag syntax)/;

/** A slog level. */
type Level = "INFO" | "WARN" | "ERROR";

/**
 * Run `dflockd-client serve` with `args` (the words after `serve`) until a
 * signal has stopped it.
 *
 * @param args dflockd's flags.
 * @param host The runtime: environment, files, stderr, signals, listener.
 * @returns The exit status: 0 after a drain, 1 when it cannot start (as dflockd).
 */
export async function serve(args: readonly string[], host: CliHost): Promise<number> {
  if (asksForHelp(args)) {
    await host.stdout.write(serveHelp());
    return EXIT.OK;
  }
  const log = (level: Level, msg: string, attrs: Record<string, string> = {}): Promise<void> =>
    host.stderr.write(slogLine(new Date(), level, msg, attrs));
  const configError = async (message: string): Promise<number> => {
    await host.stderr.write(`configuration error: ${message}\n`);
    return EXIT.CONFIG;
  };
  let flags: ParsedFlags;
  try {
    flags = parseFlags(args, (name) => host.env(name));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (FLAG_SYNTAX.test(err.message)) {
      await host.stderr.write(`${err.message}\nUsage of dflockd-client serve:\n${serveFlags()}\n`);
    }
    return configError(err.message);
  }
  if (flags.version) {
    await host.stdout.write(`dflockd-client ${VERSION} (${host.describe})\n`);
    return EXIT.OK;
  }
  const cfg: ServerConfig = flags.config;
  if (flags.authTokenFile !== undefined) {
    try {
      cfg.authToken = tokenFromFile(await host.readTextFile(flags.authTokenFile));
    } catch (err) {
      return configError(`reading auth token file ${JSON.stringify(flags.authTokenFile)}: ${messageOf(err)}`);
    }
  }
  await host.stderr.write(DEVELOPMENT_NOTE);
  if (flags.tlsCertFile !== undefined && flags.tlsKeyFile !== undefined) {
    try {
      cfg.tlsCert = await host.readTextFile(flags.tlsCertFile);
      cfg.tlsKey = await host.readTextFile(flags.tlsKeyFile);
    } catch (err) {
      await log("ERROR", "server error", { err: `tls: ${messageOf(err)}` });
      return EXIT.CONFIG;
    }
  }

  // As Go's signal.NotifyContext, which dflockd undoes only as it exits: the
  // first SIGINT or SIGTERM starts the drain, and later ones are caught and
  // change nothing, so the drain cannot be cut short.
  let signalled: () => void = () => {};
  const stopping = new Promise<void>((resolve) => {
    signalled = resolve;
  });
  const undo = (["SIGINT", "SIGTERM"] as const).map((sig) => host.onSignal(sig, () => signalled()));

  let server: RunningServer;
  try {
    server = await startServer(cfg, host.listen);
  } catch (err) {
    for (const u of undo) u();
    await log("ERROR", "server error", { err: `listen: ${messageOf(err)}` });
    return EXIT.CONFIG;
  }
  if (cfg.tlsCert !== undefined) await log("INFO", "TLS enabled");
  await log("INFO", "listening", { addr: hostPort(server.host, server.port) });

  await stopping;
  // The line is queued first, then the server stops serving in the same tick: a request that arrives once the
  // line is out is answered as during a shutdown, never as before it.
  const said = log("INFO", "shutting down, draining connections");
  const drained = drain(server, log);
  await said;
  await drained;
  return EXIT.OK;
}

/** `server.shutdown()`, saying so if the shutdown timeout passes first, as dflockd does. */
async function drain(server: RunningServer, log: (level: Level, msg: string) => Promise<void>): Promise<void> {
  const limit = server.config.shutdownTimeoutS;
  let warned: Promise<void> | undefined;
  // Set before shutdown() sets its own, so the warning comes before the connections close.
  const timer =
    limit > 0
      ? setTimeout(() => {
          warned = log("WARN", "shutdown timeout reached, force-closing connections");
        }, delayOf(limit))
      : undefined;
  try {
    await server.shutdown();
  } finally {
    clearTimeout(timer);
  }
  await warned;
}

/** `-h` or `--help` where Go's flag package would read a flag: not as a flag's value, not after `--`. */
function asksForHelp(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "--" || !a.startsWith("-")) return false;
    if (/^--?(h|help)$/.test(a)) return true;
    // A flag that takes a value as the next word (not a boolean, not `--name=value`).
    if (!a.includes("=") && !/^--?(auto-release-on-disconnect|debug|version)$/.test(a)) i++;
  }
  return false;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A line as Go's slog text handler writes it:
 * `time=2006-01-02T15:04:05.000Z level=INFO msg=listening addr=127.0.0.1:6388`.
 *
 * @param now The time, shown in the local zone with milliseconds.
 * @param level The level.
 * @param msg The message.
 * @param attrs Further `key=value` pairs, in order.
 * @returns The line, with its newline.
 */
export function slogLine(now: Date, level: Level, msg: string, attrs: Record<string, string> = {}): string {
  const pairs = [`time=${goTime(now)}`, `level=${level}`, `msg=${slogValue(msg)}`];
  for (const [k, v] of Object.entries(attrs)) pairs.push(`${k}=${slogValue(v)}`);
  return `${pairs.join(" ")}\n`;
}

/** slog quotes a value that is empty or has a space, `"`, `=` or a character that does not print. */
function slogValue(v: string): string {
  return v === "" || /[^\p{L}\p{M}\p{N}\p{P}\p{S}]|["=]/u.test(v) ? JSON.stringify(v) : v;
}

/** Go's RFC 3339 with milliseconds, in the local zone (`Z` for UTC). */
function goTime(d: Date): string {
  const p = (n: number, width = 2): string => String(n).padStart(width, "0");
  const offset = -d.getTimezoneOffset();
  const zone =
    offset === 0 ? "Z" : `${offset > 0 ? "+" : "-"}${p(Math.trunc(Math.abs(offset) / 60))}:${p(Math.abs(offset) % 60)}`;
  const date = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return `${date}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}${zone}`;
}
