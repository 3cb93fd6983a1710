/**
 * The command line's help texts.
 *
 * @module
 */
import { DEFAULT_HOST, DEFAULT_PORT } from "../connection.ts";
import { DEFAULT_GRACE_S } from "./args.ts";
import { ENV } from "./config.ts";
import { EXIT } from "./exit.ts";

const OPTIONS = `Options (every subcommand):
  --servers HOST:PORT,...   servers, in sharding order (default ${DEFAULT_HOST}:${DEFAULT_PORT}; env ${ENV.servers})
  --timeout SECONDS         how long to wait, 0 to 3600 (default 10); 0 tries once
                            (stats: time to connect, and again to answer; at least 1)
  --lease SECONDS           lease to ask for, 1 to 3600 (default: the server's)
  --tls                     connect with TLS, verified against the default CAs
  --tls-ca FILE             connect with TLS, verified against the CA(s) in FILE (PEM)
  --auth-token-file FILE    the server's auth token, read from FILE (or env ${ENV.authToken});
                            never on the command line
  -q, --quiet               no status line, no "busy" note, no notes; errors are still printed
  -h, --help                this help
  -V, --version             version, runtime and the APIs it uses`;

const STATUSES = `Exit status:
  the command's own, or 128+N if signal N ended it
  ${EXIT.USAGE}  bad arguments              ${EXIT.NO_INPUT}  a file named by an option cannot be read
  ${EXIT.UNAVAILABLE}  a server cannot be reached or refused ${EXIT.BUSY}  busy: not acquired within --timeout
  ${EXIT.INTERNAL}  a fault of dflockd-client itself (please report the stack trace)
  ${EXIT.LOST}  the lock was lost (the command was stopped, never started, or the
      release after its end found the lock gone)
  ${EXIT.AUTH}  the server refused the auth token
  ${EXIT.NOT_RUNNABLE} the command cannot be run  ${EXIT.NOT_FOUND} the command was not found
  130/143/129/131  SIGINT/SIGTERM/SIGHUP/SIGQUIT while waiting (the command never ran)`;

const RUN = `  While the command runs the lock is renewed. SIGTERM and SIGHUP are passed on
  to the command, and the lock is released only after it has ended; so are
  SIGINT and SIGQUIT unless stdin is a terminal (which sends them itself).
  If the lock is lost, the command gets SIGTERM, then SIGKILL after --grace
  seconds (default ${DEFAULT_GRACE_S}; 0 sends SIGKILL at once), and the exit status is ${EXIT.LOST}.
  On a terminal, a status line on stderr shows the wait.`;

const TEXTS = {
  lock: `Usage: dflockd-client lock KEY [options] -- CMD [ARGS...]

Run CMD while holding the lock KEY.
${RUN}

  --grace SECONDS           time between SIGTERM and SIGKILL when the lock is lost
  --key KEY                 the key, in place of KEY (for a key that begins with "-")

${OPTIONS}

${STATUSES}`,
  sem: `Usage: dflockd-client sem KEY --limit N [options] -- CMD [ARGS...]

Run CMD while holding one of N slots of the semaphore KEY (every holder must
give the same N).
${RUN}

  --limit N                 how many may hold a slot at once (required)
  --grace SECONDS           time between SIGTERM and SIGKILL when the slot is lost
  --key KEY                 the key, in place of KEY (for a key that begins with "-")

${OPTIONS}

${STATUSES}`,
  stats: `Usage: dflockd-client stats [--json] [options]

Print every server's statistics: connections, held locks with their waiters,
semaphores in use, idle keys. --timeout bounds connecting to each server and,
again, its answer (1 to 3600 seconds, default 10). Exit status 0 if every server answered, ${EXIT.AUTH} if
one refused the auth token, else ${EXIT.UNAVAILABLE}.

  --json                    one JSON array, an entry per server:
                            {"server","ok":true,"stats"} or {"server","ok":false,"error":{"code","message"}}

${OPTIONS}`,
};

/**
 * Help for `topic`, or the overview.
 *
 * @param topic A subcommand, or `undefined` for the overview.
 * @returns The text, with a final newline.
 */
export function helpText(topic: "lock" | "sem" | "stats" | undefined): string {
  if (topic !== undefined) return `${TEXTS[topic]}\n`;
  return `dflockd-client: run a command under a dflockd lock or semaphore slot, or show server stats.

Usage:
  dflockd-client lock KEY [options] -- CMD [ARGS...]
  dflockd-client sem KEY --limit N [options] -- CMD [ARGS...]
  dflockd-client stats [--json] [options]
  dflockd-client help lock|sem|stats

Examples:
  dflockd-client lock nightly-backup --timeout 0 -- ./backup.sh
  dflockd-client sem encoders --limit 4 --timeout 600 -- ffmpeg -i in.mov out.mp4
  DFLOCKD_SERVERS=10.0.0.5:6388,10.0.0.6:6388 dflockd-client stats --json

${OPTIONS}

${STATUSES}
`;
}
