/**
 * Run the dflockd double as a process, with the real server's flags:
 * `bun test/double/cli.ts --port 7000 --read-timeout 2` (or `deno run -A`).
 * Extra flags of the double: `--double-fence`, `--double-ping`,
 * `--double-draining`, `--double-lease-expired` (see DoubleOptions). Logs a line with `listening`, like
 * dflockd, and stops on SIGTERM / SIGINT.
 */
import process from "node:process";
import { startDouble } from "./server.ts";

const extra = new Set(["--double-fence", "--double-ping", "--double-draining", "--double-lease-expired"]);
const argv = process.argv.slice(2);
const server = await startDouble(
  argv.filter((a) => !extra.has(a)),
  {
    fence: argv.includes("--double-fence"),
    ping: argv.includes("--double-ping"),
    draining: argv.includes("--double-draining"),
    leaseExpired: argv.includes("--double-lease-expired"),
  },
);
console.log(`dflockd double listening addr=${server.host}:${server.port}`);
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    void server.stop().then(() => process.exit(0));
  });
}
