/**
 * Run the dflockd double as a process, with the real server's flags:
 * `bun test/double/cli.ts --port 7000 --read-timeout 2` (or `deno run -A`).
 * The reply forms of later builds are flags of the double's own:
 * `--double-fence`, `--double-ping`, `--double-draining`,
 * `--double-lease-expired`, `--double-cr-anywhere`, `--double-seconds-cap`
 * (see DoubleOptions). Logs a line with `listening`, like dflockd, and stops
 * on SIGTERM / SIGINT.
 */
import process from "node:process";
import type { DoubleOptions } from "./server.ts";
import { startDouble } from "./server.ts";

const OPTIONS: Record<string, keyof DoubleOptions> = {
  "--double-fence": "fence",
  "--double-ping": "ping",
  "--double-draining": "draining",
  "--double-lease-expired": "leaseExpired",
  "--double-cr-anywhere": "crAnywhere",
  "--double-seconds-cap": "secondsCap",
};
const argv = process.argv.slice(2);
const options: DoubleOptions = {};
for (const a of argv) {
  const name = OPTIONS[a];
  if (name !== undefined) options[name] = true;
}
const server = await startDouble(
  argv.filter((a) => OPTIONS[a] === undefined),
  options,
);
console.log(`dflockd double listening addr=${server.host}:${server.port}`);
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    void server.stop().then(() => process.exit(0));
  });
}
