/**
 * `dflockd-client lock KEY` (and `sem KEY --limit N`) without a command:
 * once held, say what is held on stdout, keep it (renewed) until SIGINT or
 * SIGTERM, then release it. For shell scripts and operators.
 *
 * @module
 */
import { LockLostError } from "../errors.ts";
import type { HeldLock } from "../held.ts";
import { EXIT } from "./exit.ts";
import type { CliHost } from "./host.ts";

/**
 * The line printed once held: `key=KEY server=HOST:PORT fence=FENCE lease=SECONDS`,
 * always these four fields in this order, one space apart. A key holds no
 * whitespace, so no value does; `fence=` is empty when the server sends none.
 *
 * @param held The holding.
 * @param server Its server, `host:port` (IPv6 in brackets).
 * @returns The line, with its newline.
 */
export function heldLine(held: Pick<HeldLock, "key" | "fence" | "leaseTtl">, server: string): string {
  return `key=${held.key} server=${server} fence=${held.fence ?? ""} lease=${held.leaseTtl}\n`;
}

/**
 * Print {@link heldLine}, hold until `stop` aborts (a signal), then release.
 *
 * @param held The holding, just granted.
 * @param server Its server.
 * @param what `lock "KEY"`, for messages.
 * @param stop Aborts on SIGINT, SIGTERM, SIGHUP or SIGQUIT.
 * @param host Where to print.
 * @returns {@link EXIT.OK} once released after a signal; {@link EXIT.LOST} if the lock was lost meanwhile.
 */
export async function holdUntilSignal(
  held: HeldLock,
  server: string,
  what: string,
  stop: AbortSignal,
  host: Pick<CliHost, "stdout" | "stderr">,
): Promise<number> {
  const say = (text: string): Promise<void> => host.stderr.write(`dflockd-client: ${text}\n`);
  await host.stdout.write(heldLine(held, server));
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
  if (held.signal.reason instanceof LockLostError) {
    await say(`${what} was lost (${held.signal.reason.message})`);
    return EXIT.LOST;
  }
  try {
    await held.release();
  } catch (err) {
    if (err instanceof LockLostError) {
      await say(`${what} was lost before it could be released (${err.message})`);
      return EXIT.LOST;
    }
    // Only the release failed; the server frees the lock when the connection closes, at exit.
    await say(
      `the release failed (${err instanceof Error ? err.message : String(err)}); the lock is freed as this exits`,
    );
  }
  return EXIT.OK;
}
