/**
 * How a connection words what went wrong with the server: a close it did not
 * ask for, and a reply that is not dflockd's at all. Pure functions of what
 * the connection knows.
 *
 * @module
 */
import { AuthError, ConnectionError, type LockError, ProtocolError } from "./errors.ts";

/** `message`, prefixed with the server's `host:port` when it is known. */
export function named(server: string | undefined, message: string): string {
  return server === undefined ? message : `${server}: ${message}`;
}

/** The error for a request whose reply did not come in time (the connection is then closed). */
export function noReplyError(
  server: string | undefined,
  command: string,
  timeoutMs: number,
  answered: boolean,
): ConnectionError {
  const hint = answered ? "" : " (nothing at all came back on this connection: is it a dflockd server?)";
  return new ConnectionError(
    named(server, `no reply to "${command}" within ${timeoutMs} ms; connection closed${hint}`),
    { code: "TIMEOUT" },
  );
}

/** The error for a reply no request asked for: the server's parting `error`, or something else entirely. */
export function unsolicitedError(server: string | undefined, line: string): LockError {
  if (line.startsWith("error")) {
    return new ConnectionError(
      named(
        server,
        `the server sent "${line}" unprompted and is closing the connection (most likely its read timeout passed)`,
      ),
    );
  }
  const shown = JSON.stringify(line.slice(0, 120));
  return new ProtocolError(
    named(server, `unsolicited reply from the server: ${shown}${notDflockdHint(line, server)}`),
    line,
  );
}

/**
 * Words a close by the server after what is known. A dflockd at its
 * `--max-connections` limit accepts and closes at once, without a byte,
 * whatever the client sends (and before a TLS handshake, so a TLS client sees
 * a failed handshake instead, never this). A TLS server closes a plain client
 * only once it has read a record header (5 bytes: every request is at least
 * that long), also at once. A close long after opening fits neither: the
 * server more likely stopped.
 *
 * @param answered Whether any byte ever came back.
 * @param tls Whether the connection is TLS.
 * @param pending Requests waiting for a reply.
 * @param ms How long ago the connection opened.
 */
export function serverClosedMessage(answered: boolean, tls: boolean, pending: number, ms: number): string {
  if (answered) return "the server closed the connection";
  const soon = ms < 1000;
  const after = soon ? "" : ` ${(ms / 1000).toFixed(1)} s after the connection opened,`;
  if (tls) {
    return `the server closed the TLS connection${after} before answering anything (it may be shutting down, or at a connection limit)`;
  }
  if (pending === 0) {
    return soon
      ? `the server closed the connection ${ms} ms after it opened, before any request was sent: most likely it is at its connection limit (--max-connections)`
      : `the server closed the connection${after} before any request was sent (it may be shutting down, or at its connection limit, --max-connections)`;
  }
  return soon
    ? "the server closed the connection before answering anything: if it expects TLS, set the tls option; if not, it may be at its connection limit (--max-connections)"
    : `the server closed the connection${after} before answering anything (it may have stopped; if it expects TLS, set the tls option)`;
}

/** A reply in dflockd's own words starts with one of its statuses. */
const DFLOCKD_STATUS = /^(ok|timeout|acquired|queued|error\w*)( |$)/;

/**
 * A hint for a reply that is no dflockd reply at all (another service on that
 * port, say an HTTP server), else `""`.
 *
 * @param line The reply line.
 * @param server The server's `host:port`, when known.
 */
export function notDflockdHint(line: string, server: string | undefined): string {
  if (DFLOCKD_STATUS.test(line)) return "";
  return `; that is not a dflockd reply: is ${server ?? "the other end"} a dflockd server? Check the host and port`;
}

/** The shortest read timeout a dflockd takes (`--read-timeout` is whole seconds, at least 1), less what clocks and delivery may shave off. */
const MIN_READ_TIMEOUT_MS = 900;
/**
 * How much shorter than the client's assumption the idle gap must be: both are
 * whole seconds, so a shorter read timeout is at least a second shorter, and
 * a gap within half a second of the assumption is the assumption itself.
 */
const SHORTER_BY_MS = 500;

/**
 * Why a holding was lost when the server closed its connection. When the
 * evidence fits a read timeout shorter than the client assumed (dflockd's
 * parting `error`, sent unprompted with no request pending, after the
 * connection had been idle at least about a second and at least half a
 * second less than `assumedMs`),
 * it names the option that prevents it and the value to set: the idle time
 * seen, rounded down, or the server's own `--read-timeout`. The idle time
 * is shown rounded down too (to a tenth of a second), and never below the
 * value to set: dflockd's read timeout is whole seconds, at least 1, and an
 * idle time measured just under a second (the client counts from its own
 * send) is that 1 s timeout.
 *
 * @param idleMs How long the connection had been idle when the server sent its parting `error`, if it did.
 * @param assumedMs The client's `serverReadTimeoutS`, in ms.
 */
export function lostConnectionReason(idleMs: number | undefined, assumedMs: number): string {
  if (idleMs === undefined || idleMs < MIN_READ_TIMEOUT_MS || idleMs > assumedMs - SHORTER_BY_MS) {
    return "the connection to the server was lost";
  }
  const fix = Math.max(1, Math.floor(idleMs / 1000));
  const shown = Math.max(fix, Math.floor(idleMs / 100) / 10);
  return `the server closed the connection after it had been idle ${shown.toFixed(1)} s: its read timeout looks shorter than the ${assumedMs / 1000} s the client assumed (serverReadTimeoutS). Set serverReadTimeoutS to ${fix}, or to the server's --read-timeout, so that renewals come in time`;
}

/** A reply's parse error, worded with the server (and a hint if the peer is not dflockd). */
export function replyError(server: string | undefined, line: string, caught: unknown): unknown {
  if (caught instanceof ProtocolError) {
    return new ProtocolError(named(server, `${caught.message}${notDflockdHint(line, server)}`), caught.reply);
  }
  return caught instanceof AuthError ? new AuthError({ server, tokenSent: caught.tokenSent }) : caught;
}
