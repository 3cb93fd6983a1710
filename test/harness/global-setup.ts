/**
 * Runs once before the integration and smoke suites: decide which server the run uses
 * (see chooseServer), tell the workers through DFLOCKD_SERVER_RESOLVED, and
 * say it plainly in the output and in .test-results/<runtime>-server.txt
 * (which .ci/run prints at the end).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RUNTIME } from "../support/runtime.ts";
import { chooseServer, describeChoice } from "./dflockd.ts";

export default function setup(): void {
  if (process.env.DFLOCKD_SERVER_RESOLVED !== undefined) return; // a second project of the same run
  const choice = chooseServer();
  process.env.DFLOCKD_SERVER_RESOLVED = choice.kind === "real" ? choice.bin : "double";
  const line = `dflockd for the ${RUNTIME} run: ${describeChoice(choice)}`;
  process.stderr.write(`\n== ${line}\n\n`);
  const dir = join(import.meta.dirname, "..", "..", ".test-results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${RUNTIME}-server.txt`), `${line}\n`);
}
