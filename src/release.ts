/**
 * The release of a held lock, as events of its machine: after any renewal in
 * flight, the release is sent on the holding's connection, and its reply
 * becomes `releaseDone`, `gone` (the server no longer knew the token: the
 * lease had run out), `replyLate` or `closed`. Whatever ended the holding
 * meanwhile (the loss deadline, say) is what the caller hears.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { type LockError, LockLostError } from "./errors.ts";
import type { Event, Phase } from "./machine.ts";
import type { Settings } from "./options.ts";
import { commandName, type Grant, parseOkReply, releaseRequest } from "./protocol.ts";
import { provesGone } from "./renewals.ts";

/** What the release reads of the driver, and how it acts: events. */
export interface ReleaseHost {
  readonly key: string;
  readonly s: Settings;
  readonly phase: Phase;
  readonly epoch: number;
  readonly conn: Connection | undefined;
  readonly grant: Grant | undefined;
  fire(event: Event, reason?: LockError): boolean;
  /** The loss that ended generation `epoch`, once; `undefined` if it did not end in a loss. */
  lossOf(epoch: number): LockLostError | undefined;
}

/**
 * The table's `sendRelease`, for the holding `h` is in (phase `releasing`).
 * @param inflight The renewal in flight, waited for first.
 * @throws LockLostError if the holding turned out lost; the request's error
 * if the release could not be confirmed (the connection is then closed,
 * which releases it on the server).
 */
export async function sendRelease(h: ReleaseHost, inflight: Promise<void> | undefined): Promise<void> {
  const conn = h.conn as Connection;
  const { token } = h.grant as Grant;
  const epoch = h.epoch;
  if (inflight !== undefined) await inflight;
  try {
    if (h.epoch === epoch && h.phase === "releasing") {
      await conn.request(
        releaseRequest(h.s.kind, h.key, token),
        commandName(h.s.kind, "release"),
        parseOkReply,
        h.s.requestTimeoutMs,
      );
      // `ok` means the server released it, even if the connection closed since.
      if (h.epoch === epoch) {
        h.fire("releaseDone");
        return;
      }
    }
    // Lost while the renewal finished or the release was on its way, or closed meanwhile.
    const lost = h.lossOf(epoch);
    if (lost !== undefined) throw lost;
  } catch (err) {
    if (h.epoch === epoch) {
      if (provesGone(err)) {
        const why = "the server no longer recognised the token at release (lease expired?)";
        h.fire("gone", new LockLostError(h.key, why, err));
      } else h.fire((err as { code?: unknown } | null)?.code === "TIMEOUT" ? "replyLate" : "closed", err as LockError);
    }
    throw h.lossOf(epoch) ?? err;
  }
}
