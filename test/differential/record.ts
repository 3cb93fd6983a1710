/**
 * Record what a real dflockd answers to every differential script, for the
 * replay test that holds the double to it on machines with no real server:
 *
 *   DFLOCKD_BIN=/path/to/dflockd bun test/differential/record.ts "<label>"
 *
 * The label names the build (tag or commit). Transcripts are normalised
 * (see runner.ts), so they hold no tokens or timings. Recording the same
 * label again replaces it.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { startDflockd } from "../harness/dflockd.ts";
import { detectForms } from "./forms.ts";
import { RECORDED_FILE, type Recording } from "./recorded.ts";
import { runScript } from "./runner.ts";
import { scripts } from "./scripts.ts";

const label = process.argv[2];
const bin = process.env.DFLOCKD_BIN;
if (!label || !bin) {
  console.error('usage: DFLOCKD_BIN=/path/to/dflockd bun test/differential/record.ts "<label>"');
  process.exit(2);
}
const forms = await detectForms(bin);
const transcripts: Record<string, string[]> = {};
await Promise.all(
  scripts().map(async (script) => {
    const server = await startDflockd(script.flags ?? [], { bin });
    try {
      transcripts[script.name] = await runScript(script, server);
    } finally {
      await server.stop();
    }
  }),
);
const file = join(import.meta.dirname, RECORDED_FILE);
const all = JSON.parse(readFileSync(file, "utf8")) as Record<string, Recording>;
const ordered: Record<string, string[]> = {};
for (const s of scripts()) ordered[s.name] = transcripts[s.name] as string[];
all[label] = { forms, recorded: new Date().toISOString().slice(0, 10), transcripts: ordered };
writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
console.log(`recorded ${Object.keys(ordered).length} scripts for "${label}" (forms ${JSON.stringify(forms)})`);
process.exit(0);
