/**
 * The command line's own exit statuses. Anything else is the child's: its
 * exit code, or 128 + the number of the signal that ended it.
 *
 * @module
 */

/** The statuses `dflockd-client` exits with when the child's is not the answer. */
export const EXIT = {
  /** Stats: every server answered. Serve: stopped by SIGINT or SIGTERM, and drained. */
  OK: 0,
  /** `serve`: a bad flag or setting, or the server cannot start (dflockd's own status for these). */
  CONFIG: 1,
  /** Bad arguments or options (sysexits' EX_USAGE). */
  USAGE: 64,
  /** A file named by an option (token, CA) cannot be read (EX_NOINPUT). */
  NO_INPUT: 66,
  /** A server could not be reached, refused the request, or did not answer as dflockd does (EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** A fault of this tool itself (EX_SOFTWARE); the message is a stack trace to report. */
  INTERNAL: 70,
  /** Busy: not acquired within `--timeout` (EX_TEMPFAIL; `--timeout 0` tries once). */
  BUSY: 75,
  /**
   * The lock was lost: while the command ran (it was stopped), as it was granted (it never started), or
   * before the release after its end (it ran to the end, but unprotected for a while).
   */
  LOST: 76,
  /** The server refused the auth token (EX_NOPERM); for stats, any server did. */
  AUTH: 77,
  /** The command was found but cannot be run. */
  NOT_RUNNABLE: 126,
  /** The command was not found. */
  NOT_FOUND: 127,
} as const;
