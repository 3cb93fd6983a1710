/**
 * The double against what real dflockd builds answered: every differential
 * script runs on the double, set to each recorded build's reply forms, and
 * must give that build's recorded transcript (test/differential/recorded.json,
 * written by test/differential/record.ts from a real server). This holds the
 * double to the real server on machines where none can be installed; the
 * differential test does the same live whenever one is found.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RECORDED_FILE, type Recording } from "../differential/recorded.ts";
import { reconcile, runScript } from "../differential/runner.ts";
import { scripts } from "../differential/scripts.ts";
import { startDflockd } from "../harness/dflockd.ts";

const recordings = JSON.parse(
  readFileSync(join(import.meta.dirname, "..", "differential", RECORDED_FILE), "utf8"),
) as Record<string, Recording>;

describe("recordings exist", () => {
  it("for at least one real build", () => {
    expect(Object.keys(recordings).length).toBeGreaterThan(0);
  });
});

for (const [build, rec] of Object.entries(recordings)) {
  describe.concurrent(`the double answers like real dflockd ${build}, recorded ${rec.recorded}`, () => {
    for (const script of scripts()) {
      it(script.name, async () => {
        const want = rec.transcripts[script.name];
        if (want === undefined) {
          throw new Error(
            `no recording of "${script.name}" for ${build}: record it with a real server ` +
              "(DFLOCKD_BIN=... bun test/differential/record.ts <label>)",
          );
        }
        const server = await startDflockd(script.flags ?? [], "double", rec.forms);
        try {
          expect(reconcile(want, await runScript(script, server))).toEqual(want);
        } finally {
          await server.stop();
        }
      });
    }
  });
}
