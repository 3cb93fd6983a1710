/**
 * The release of a held lock, as events of its machine: after any renewal in
 * flight, the release is sent on the holding's connection, and its reply
 * becomes `releaseDone`, `gone` (the server no longer knew the token: the
 * lease had run out), `notLeader` (a cluster follower: the release did not
 * happen, the lease runs out on the leader), `replyLate` or `closed`. Whatever ended the holding
 * meanwhile (the loss deadline, say) is what the caller hears.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { type LockError, LockLostError } from "./errors.ts";
import { NotLeaderError } from "./leader.ts";
import type { Event, Phase } from "./machine.ts";
import type { Settings } from "./options.ts";
import { commandName, type Grant, parseOkReply, releaseRequest } from "./protocol.ts";
import { patience, provesGone } from "./renewals.ts";

/** What the release reads of the driver, and how it acts: events. */
export interface ReleaseHost {
  readonly key: string;
  readonly s: Settings;
  readonly phase: Phase;
  readonly epoch: number;
  readonly conn: Connection | undefined;
  readonly grant: Grant | undefined;
  /** The holding's lease: its loss deadline (monotonic ms). */
  readonly lease: { readonly lossAt: number };
  fire(event: Event, reason?: LockError): boolean;
  /** Called once when the holding ends (phase `releasing` left), with why, if not released. */
  releaseEnd: ((reason: LockError | undefined) => void) | undefined;
  /** The loss that ended generation `epoch`, once; `undefined` if it did not end in a loss. */
  lossOf(epoch: number): LockLostError | undefined;
}

/**
 * The table's `sendRelease`, for the holding `h` is in (phase `releasing`).
 * Settles when the holding ends, whatever ends it: the release's reply, or
 * meanwhile the loss deadline or close() (the reply may still be queued
 * behind a slow server, on a connection others keep).
 * @param inflight The renewal in flight, waited for first.
 * @throws LockLostError if the holding turned out lost; the request's error
 * if the release could not be confirmed (the connection is then closed,
 * which releases it on the server).
 */
export function sendRelease(h: ReleaseHost, inflight: Promise<void> | undefined): Promise<void> {
  const epoch = h.epoch;
  return new Promise<void>((resolve, reject) => {
    h.releaseEnd = (reason) => {
      const err = h.lossOf(epoch) ?? reason;
      if (err === undefined) resolve();
      else reject(err);
    };
    // Chained, not an async function: no generator and no extra promise per release (it is on every op's path).
    const token = (h.grant as Grant).token;
    if (inflight === undefined) send(h, epoch, token);
    else inflight.then(() => send(h, epoch, token), reject);
  });
}

/** Send the release (if still releasing); callbacks, not a promise, turn its reply into an event. */
function send(h: ReleaseHost, epoch: number, token: string): void {
  if (h.epoch !== epoch || h.phase !== "releasing") return;
  const request = releaseRequest(h.s.kind, h.key, token);
  const command = commandName(h.s.kind, "release");
  // Queued behind a slow server, it waits while the lease is provable: the deadline (alarm) decides.
  (h.conn as Connection).send(
    request,
    command,
    parseOkReply,
    patience(h.lease.lossAt, h.s),
    released,
    failed,
    h,
    epoch,
  );
}

function released(_ok: unknown, h: ReleaseHost, epoch: number): void {
  // `ok` means the server released it, even if the connection closed since.
  if (h.epoch === epoch) fire(h, "releaseDone");
}

function failed(err: unknown, h: ReleaseHost, epoch: number): void {
  if (h.epoch !== epoch) return;
  if (provesGone(err)) {
    const why = "the server no longer recognised the token at release (lease expired?)";
    fire(h, "gone", new LockLostError(h.key, why, err));
  } else if (err instanceof NotLeaderError) fire(h, "notLeader", err);
  else fire(h, (err as { code?: unknown } | null)?.code === "TIMEOUT" ? "replyLate" : "closed", err as LockError);
}

/** Fire `event`; should that throw, the caller of release() hears it, or if none is left, the runtime (inflight.ts). */
function fire(h: ReleaseHost, event: Event, reason?: LockError): void {
  try {
    h.fire(event, reason);
  } catch (err) {
    const end = h.releaseEnd;
    if (end === undefined) throw err;
    end(err as LockError);
  }
}
