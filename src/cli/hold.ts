/**
 * `dflockd-client lock KEY` (and `sem KEY --limit N`, and several keys) without a command:
 * once held, say what is held on stdout, keep it (renewed) until SIGINT or
 * SIGTERM, then release it. For shell scripts and operators.
 *
 * @module
 */
import { LockLostError } from "../errors.ts";
import { EXIT } from "./exit.ts";
import type { CliHost } from "./host.ts";
import type { HeldEntry, Holding } from "./take.ts";

/**
 * The line printed once held: `key=KEY server=HOST:PORT fence=FENCE lease=SECONDS`,
 * always these four fields in this order, one space apart. A key holds no
 * whitespace, so no value does; `fence=` is empty when the server sends none.
 * Several keys print one such line each, in the order taken, all at once.
 *
 * @param held One key held, with its server (`host:port`, IPv6 in brackets).
 * @returns The line, with its newline.
 */
export function heldLine(held: HeldEntry): string {
  return `key=${held.key} server=${held.server} fence=${held.fence ?? ""} lease=${held.leaseTtl}\n`;
}

/**
 * Print {@link heldLine} for each key, hold until `stop` aborts (a signal), then release.
 *
 * @param held The holding, just granted.
 * @param lostOne What a loss names: `lock "KEY"`; the key lost alone when several are held.
 * @param stop Aborts on SIGINT, SIGTERM, SIGHUP or SIGQUIT.
 * @param host Where to print.
 * @param hurried Whether a second signal closed the client during the release (then the release is not waited for).
 * @returns {@link EXIT.OK} once released after a signal; {@link EXIT.LOST} if the lock was lost meanwhile.
 */
export async function holdUntilSignal(
  held: Holding,
  lostOne: (err: unknown) => string,
  stop: AbortSignal,
  host: Pick<CliHost, "stdout" | "stderr">,
  hurried: () => boolean = () => false,
): Promise<number> {
  const say = (text: string): Promise<void> => host.stderr.write(`dflockd-client: ${text}\n`);
  await host.stdout.write(held.entries.map(heldLine).join(""));
  // Neither a signal listener nor a renewal's timer keeps every runtime alive: this does, until the end.
  const alive = setInterval(() => {}, 1 << 30);
  try {
    await new Promise<void>((resolve) => {
      if (stop.aborted || held.signal.aborted) return resolve();
      stop.addEventListener("abort", () => resolve(), { once: true });
      held.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    clearInterval(alive);
  }
  const reason: unknown = held.signal.reason;
  if (reason instanceof LockLostError) {
    await held.releaseRest();
    await say(`${lostOne(reason)} was lost (${reason.message})`);
    return EXIT.LOST;
  }
  try {
    await held.release();
  } catch (err) {
    if (err instanceof LockLostError) {
      await say(`${lostOne(err)} was lost before it could be released (${err.message})`);
      return EXIT.LOST;
    }
    // A second signal closed the client: the caller says so.
    if (hurried()) return EXIT.OK;
    // Only the release failed; the server frees the lock when the connection closes, at exit.
    await say(
      `the release failed (${err instanceof Error ? err.message : String(err)}); the lock is freed as this exits`,
    );
  }
  return EXIT.OK;
}
