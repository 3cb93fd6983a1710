/**
 * The command line's help texts.
 *
 * @module
 */
import { DEFAULT_HOST, DEFAULT_PORT } from "../connection.ts";
import { defaultConfig } from "../server/config.ts";
import { DEFAULT_GRACE_S, type HelpTopic } from "./args.ts";
import { ENV } from "./config.ts";
import { EXIT } from "./exit.ts";

const OPTIONS = `Options (lock, sem and stats; serve takes dflockd's flags, see help serve):
  --servers HOST:PORT,...   servers, in sharding order (default ${DEFAULT_HOST}:${DEFAULT_PORT}; env ${ENV.servers})
  --timeout DURATION        how long to wait, from the request (connecting not counted):
                            seconds, or 500ms, 90s, 5m, 2h; up to 24h (default 10s);
                            0 tries once (stats: time to connect, and again to answer;
                            1s to 1h)
  --lease SECONDS           lease to ask for, 1 to 3600 (default: the server's)
  --tls                     connect with TLS, verified against the default CAs
  --tls-ca FILE             connect with TLS, verified against the CA(s) in FILE (PEM)
  --auth-token-file FILE    the server's auth token, read from FILE (or env ${ENV.authToken});
                            never on the command line
  -q, --quiet               no status line, no "busy" note, no notes; errors are still printed
  -h, --help                this help
  -V, --version             version, runtime and the APIs it uses`;

/** The exit statuses, one to a row: status, then meaning. */
const STATUS_ROWS: ReadonlyArray<readonly [string, string]> = [
  ["CMD's", "the command's own status, or 128+N if signal N ended it"],
  [`${EXIT.OK}`, "no command: released after SIGINT or SIGTERM"],
  [`${EXIT.USAGE}`, "bad arguments"],
  [`${EXIT.NO_INPUT}`, "a file named by an option cannot be read"],
  [`${EXIT.UNAVAILABLE}`, "a server cannot be reached, or refused the request"],
  [`${EXIT.INTERNAL}`, "a fault of dflockd-client itself (please report the stack trace)"],
  [`${EXIT.BUSY}`, "busy: not acquired within --timeout (--conflict-exit-code N to change)"],
  [`${EXIT.LOST}`, "the lock was lost (the command was stopped, never started, or the"],
  ["", "release after its end found the lock gone; without a command, while it"],
  ["", "was held)"],
  [`${EXIT.AUTH}`, "the server refused the auth token"],
  [`${EXIT.NOT_RUNNABLE}`, "the command cannot be run"],
  [`${EXIT.NOT_FOUND}`, "the command was not found"],
  ["130 143 129 131", "SIGINT SIGTERM SIGHUP SIGQUIT while waiting (nothing ran); without a"],
  ["", "command, also a second signal while releasing (not waited for)"],
];

/**
 * The exit-status table of `lock` and `sem`: two aligned columns.
 *
 * @param extra Rows to add at the end.
 * @returns The table under its heading, without a final newline.
 */
export function statusTable(extra: ReadonlyArray<readonly [string, string]> = []): string {
  const rows = [...STATUS_ROWS, ...extra];
  const width = Math.max(...rows.map(([code]) => code.length)) + 2;
  return ["Exit status:", ...rows.map(([code, text]) => `  ${code.padEnd(width)}${text}`)].join("\n");
}

const STATUSES = statusTable();

const RUN = `  While the command runs the lock is renewed. SIGTERM and SIGHUP are passed on
  to the command, and the lock is released only after it has ended; so are
  SIGINT and SIGQUIT unless stdin is a terminal (which sends them itself).
  If the lock is lost, the command gets SIGTERM, then SIGKILL after --grace
  seconds (default ${DEFAULT_GRACE_S}; 0 sends SIGKILL at once), and the exit status is ${EXIT.LOST}.
  On a terminal, a status line on stderr shows the wait.
  The command's environment has DFLOCKD_KEY, DFLOCKD_SERVER (host:port),
  DFLOCKD_FENCE (when the server sends a fencing token, or with
  --fence-from-token) and DFLOCKD_LEASE (seconds); never the token.
  Without a command, it holds until SIGINT or SIGTERM, renewing, and prints
  one line once held: key=KEY server=HOST:PORT fence=FENCE lease=SECONDS
  (fence= is empty without one); then it releases and exits ${EXIT.OK}. A second
  signal does not wait for the release: the connection closes (which frees
  the lock on the server) and it exits at once; with CMD, so does a signal
  after CMD has ended.
  Several keys (--key more than once) are all held or none: busy if any is
  not had in time. Each variable is then a list, one field per key in the
  order taken, one space apart (DFLOCKD_FENCE: - for a key without a fence);
  without a command, one line per key, in that order.`;

const WAITING = `  --wait                    wait without limit, keeping the place in line
  --fence-from-token        the server is dflockd v2.1+: DFLOCKD_FENCE is read from
                            the token (never for v1.x or v2.0, whose tokens are random)
  --conflict-exit-code N    exit status when busy, 0 to 255 (default ${EXIT.BUSY}), as flock -E`;

const TEXTS = {
  lock: `Usage: dflockd-client lock KEY [options] [-- CMD [ARGS...]]

Run CMD while holding the lock KEY (without CMD, hold it until a signal).
${RUN}

${WAITING}
  --grace SECONDS           time between SIGTERM and SIGKILL when the lock is lost
  --key KEY                 the key, in place of KEY (for a key that begins with "-");
                            more than once: hold every key given

${OPTIONS}

${STATUSES}`,
  sem: `Usage: dflockd-client sem KEY --limit N [options] [-- CMD [ARGS...]]

Run CMD while holding one of N slots of the semaphore KEY (every holder must
give the same N; without CMD, hold the slot until a signal).
${RUN}

  --limit N                 how many may hold a slot at once (required)
${WAITING}
  --grace SECONDS           time between SIGTERM and SIGKILL when the slot is lost
  --key KEY                 the key, in place of KEY (for a key that begins with "-");
                            more than once: a slot of each, every one with --limit N

${OPTIONS}

${STATUSES}`,
  stats: `Usage: dflockd-client stats [--json] [options]

Print every server's statistics: connections, held locks with their waiters,
semaphores in use, idle keys. --timeout bounds connecting to each server and,
again, its answer (1s to 1h, default 10s). Exit status 0 if every server answered, ${EXIT.AUTH} if
one refused the auth token, else ${EXIT.UNAVAILABLE}.

  --json                    one JSON array, an entry per server:
                            {"server","ok":true,"stats"} or {"server","ok":false,"error":{"code","message"}}

${OPTIONS}`,
};

/** The dflockd release to run in production; kept equal to package.json's `config.dflockdVersion` by a test. */
export const DFLOCKD_VERSION = "v1.16.1";

/** How to install the real server. */
export const DFLOCKD_INSTALL = `go install github.com/mtingers/dflockd/cmd/dflockd@${DFLOCKD_VERSION}`;

/** What `serve` is for, and what to run instead; `serve` prints it on stderr as it starts. */
export const DEVELOPMENT_NOTE = `dflockd-client serve: a development server, for tests and first steps. It answers as
dflockd v1.10.0 does, but it is not dflockd. In production, run dflockd itself:
  ${DFLOCKD_INSTALL}
`;

/**
 * `serve`'s flags: dflockd's, with its defaults and the variable each falls
 * back to when not given.
 *
 * @returns The list, one flag to two lines, without a final newline.
 */
export function serveFlags(): string {
  const d = defaultConfig();
  const rows: Array<[string, string, string | undefined]> = [
    ["--host ADDR", `bind address (default ${d.host})`, "DFLOCKD_HOST"],
    ["--port N", `bind port, 0 for a free one (default ${d.port})`, "DFLOCKD_PORT"],
    [
      "--default-lease-ttl SECONDS",
      `lease when a request names none (default ${d.defaultLeaseTtlS})`,
      "DFLOCKD_DEFAULT_LEASE_TTL_S",
    ],
    [
      "--lease-sweep-interval SECONDS",
      `how often lapsed leases are freed (default ${d.leaseSweepIntervalS})`,
      "DFLOCKD_LEASE_SWEEP_INTERVAL_S",
    ],
    ["--gc-interval SECONDS", `how often idle keys are pruned (default ${d.gcIntervalS})`, "DFLOCKD_GC_LOOP_SLEEP"],
    [
      "--gc-max-idle SECONDS",
      `idle time before a key is pruned (default ${d.gcMaxIdleS})`,
      "DFLOCKD_GC_MAX_UNUSED_TIME",
    ],
    ["--max-locks N", `most keys at once (default ${d.maxLocks})`, "DFLOCKD_MAX_LOCKS"],
    [
      "--max-connections N",
      `most connections at once, 0 = no limit (default ${d.maxConnections})`,
      "DFLOCKD_MAX_CONNECTIONS",
    ],
    ["--max-waiters N", `most waiters per key, 0 = no limit (default ${d.maxWaiters})`, "DFLOCKD_MAX_WAITERS"],
    [
      "--read-timeout SECONDS",
      `a connection silent this long is closed (default ${d.readTimeoutS})`,
      "DFLOCKD_READ_TIMEOUT_S",
    ],
    ["--write-timeout SECONDS", `write timeout (default ${d.writeTimeoutS})`, "DFLOCKD_WRITE_TIMEOUT_S"],
    [
      "--shutdown-timeout SECONDS",
      `drain limit after SIGTERM, 0 = wait for ever (default ${d.shutdownTimeoutS})`,
      "DFLOCKD_SHUTDOWN_TIMEOUT_S",
    ],
    [
      "--auto-release-on-disconnect",
      `free a connection's locks when it closes (default ${d.autoReleaseOnDisconnect}; =false to keep them)`,
      "DFLOCKD_AUTO_RELEASE_ON_DISCONNECT",
    ],
    ["--tls-cert FILE", "TLS certificate chain (PEM); with --tls-key, serve TLS", "DFLOCKD_TLS_CERT"],
    ["--tls-key FILE", "TLS private key (PEM)", "DFLOCKD_TLS_KEY"],
    [
      "--auth-token TOKEN",
      "require this token first (visible to ps; prefer --auth-token-file)",
      "DFLOCKD_AUTH_TOKEN, which wins over both token flags",
    ],
    ["--auth-token-file FILE", "the token, from FILE (trimmed)", "DFLOCKD_AUTH_TOKEN_FILE"],
    ["--debug", "accepted, as dflockd's; this server logs nothing more with it", undefined],
    ["--version", "print the version and exit", undefined],
    [
      "--server-version 1.10|1.16|2.1",
      `this server's own: the dflockd generation to answer as (default ${d.version})`,
      undefined,
    ],
  ];
  return rows
    .map(
      ([flag, text, env]) => `  ${flag.padEnd(32)}${text}${env === undefined ? "" : `\n  ${"".padEnd(32)}env ${env}`}`,
    )
    .join("\n");
}

const SERVE = `Usage: dflockd-client serve [flags]

Run a dflockd-compatible server in this process, for tests and first steps. It
answers as dflockd v1.10.0 does (or, with --server-version, as v1.16 or v2.1 do),
but it is not dflockd. In production run dflockd:
  ${DFLOCKD_INSTALL}

It logs to stderr as dflockd does, with a line "... msg=listening addr=HOST:PORT"
once it accepts connections (with --port 0, the port it picked). SIGINT or
SIGTERM stops it as they stop dflockd: it takes no new connections, blocked
lock requests get "error", open connections are served until they close or
--shutdown-timeout passes, and then it exits ${EXIT.OK}. Further signals during that
drain change nothing.

The flags are dflockd's, but --server-version: -name or --name, "--name VALUE"
or "--name=VALUE". A flag not given is read from its variable, as dflockd reads it.

${serveFlags()}

Exit status:
  ${EXIT.OK}   stopped by SIGINT or SIGTERM, once every connection was gone
  ${EXIT.CONFIG}   a bad flag or setting ("configuration error: ..."), or it cannot listen or
      read --tls-cert/--tls-key ("server error"), as dflockd
  ${EXIT.INTERNAL}  a fault of dflockd-client itself (please report the stack trace)

Deno needs --allow-net to listen, --allow-read for the files the flags name,
and --allow-env for the DFLOCKD_ variables to read (the others read as unset).`;

/**
 * `serve`'s help.
 *
 * @returns The text, with a final newline.
 */
export function serveHelp(): string {
  return `${SERVE}\n`;
}

/**
 * Help for `topic`, or the overview.
 *
 * @param topic A subcommand, or `undefined` for the overview.
 * @returns The text, with a final newline.
 */
export function helpText(topic: HelpTopic | undefined): string {
  if (topic === "serve") return serveHelp();
  if (topic !== undefined) return `${TEXTS[topic]}\n`;
  return `dflockd-client: run a command under a dflockd lock or semaphore slot, show server stats,
or run a development server.

Usage:
  dflockd-client lock KEY [options] [-- CMD [ARGS...]]
  dflockd-client sem KEY --limit N [options] [-- CMD [ARGS...]]
  dflockd-client stats [--json] [options]
  dflockd-client serve [dflockd's flags]     a dflockd-compatible server for tests (not for production)
  dflockd-client help lock|sem|stats|serve

Examples:
  dflockd-client lock nightly-backup --timeout 0 -- ./backup.sh
  dflockd-client lock deploy --wait -- ./deploy.sh
  dflockd-client sem encoders --limit 4 --timeout 10m -- ffmpeg -i in.mov out.mp4
  DFLOCKD_SERVERS=10.0.0.5:6388,10.0.0.6:6388 dflockd-client stats --json
  dflockd-client serve --port 0

${OPTIONS}

${statusTable([["serve", `${EXIT.OK} once drained after SIGINT/SIGTERM; ${EXIT.CONFIG} a bad flag or setting, or it cannot start`]])}
`;
}
