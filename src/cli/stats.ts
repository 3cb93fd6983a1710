/**
 * `dflockd-client stats`: every server's statistics as a table for people or
 * JSON for scripts.
 *
 * @module
 */
import type { ServerStats } from "../client.ts";
import { quote } from "../errors.ts";
import type { Stats } from "../replies.ts";
import { hostPort } from "../transport.ts";
import { cliMessage } from "./config.ts";

/** One server's entry in `stats --json`. */
export type StatsJsonEntry =
  | { server: string; ok: true; stats: Stats }
  | { server: string; ok: false; error: { code: string; message: string } };

/**
 * The JSON document `stats --json` prints: an array, one entry per server in
 * the order given.
 *
 * @param all What {@link DflockdClient.stats} answered.
 * @returns The JSON text, with a final newline.
 */
export function statsJson(all: readonly ServerStats[]): string {
  const out: StatsJsonEntry[] = all.map((s) =>
    s.ok
      ? { server: hostPort(s.host, s.port), ok: true, stats: s.stats }
      : { server: hostPort(s.host, s.port), ok: false, error: { code: s.error.code, message: cliMessage(s.error) } },
  );
  return `${JSON.stringify(out, null, 2)}\n`;
}

/**
 * The table `stats` prints: per server, its connections, held locks,
 * semaphores in use and idle keys, or why it did not answer.
 *
 * @param all What {@link DflockdClient.stats} answered.
 * @returns The text, with a final newline.
 */
export function statsTable(all: readonly ServerStats[]): string {
  const lines: string[] = [];
  for (const s of all) {
    const where = hostPort(s.host, s.port);
    if (!s.ok) {
      lines.push(`${where}  no answer: ${cliMessage(s.error)}`);
      continue;
    }
    const st = s.stats;
    const idle = st.idle_locks.length + st.idle_semaphores.length;
    lines.push(`${where}  ${plural(st.connections, "connection")}, ${plural(idle, "idle key")}`);
    if (st.locks.length === 0 && st.semaphores.length === 0) lines.push("  nothing held");
    if (st.locks.length > 0) {
      lines.push(
        ...grid([
          ["LOCK", "OWNER", "LEASE LEFT", "WAITERS"],
          ...st.locks.map((l) => [
            printable(l.key),
            `conn ${l.owner_conn_id}`,
            `${l.lease_expires_in_s.toFixed(1)}s`,
            String(l.waiters),
          ]),
        ]),
      );
    }
    if (st.semaphores.length > 0) {
      lines.push(
        ...grid([
          ["SEMAPHORE", "HOLDERS", "WAITERS"],
          ...st.semaphores.map((m) => [printable(m.key), `${m.holders}/${m.limit}`, String(m.waiters)]),
        ]),
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

/**
 * `text` safe to print on a terminal: control, format and other invisible
 * characters (which a key may hold) are shown escaped, as `\u001b`, instead
 * of acting on the terminal; `"` and `\` are escaped too.
 *
 * @param text A key, as the server sent it.
 * @returns The text as the library quotes values in its messages, without the quotes.
 */
export function printable(text: string): string {
  const q = quote(text, 1024); // keys are at most 256 bytes: never cut
  return q.slice(1, q.length - 1);
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}

/** Rows as left-aligned columns, indented by two spaces. */
function grid(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) widths[i] = Math.max(widths[i] ?? 0, (row[i] as string).length);
  }
  return rows.map(
    (row) => `  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  ")}`,
  );
}
