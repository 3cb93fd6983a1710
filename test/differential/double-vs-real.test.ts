/**
 * The differential test: the same request scripts go to a real dflockd and to
 * the double, and their normalised transcripts must be identical. It is part
 * of the run whenever a real server is found (see vitest.config.ts).
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { DoubleOptions } from "../double/server.ts";
import { startDflockd } from "../harness/dflockd.ts";
import { HOW_TO_FIX, locateDflockd } from "../harness/locate.ts";
import { detectForms } from "./forms.ts";
import { reconcile, runScript, type Script } from "./runner.ts";
import { scripts } from "./scripts.ts";

const located = locateDflockd();
if (located.bin === undefined)
  throw new Error(`the differential test needs a real dflockd: ${located.why}\n${HOW_TO_FIX}`);
const real = { bin: located.bin };

async function transcript(script: Script, server: "double" | { bin: string }, forms: DoubleOptions): Promise<string[]> {
  const s = await startDflockd(script.flags ?? [], server, forms);
  try {
    return await runScript(script, s);
  } finally {
    await s.stop();
  }
}

describe.concurrent(`the double answers like the real dflockd at ${real.bin}`, () => {
  let forms: DoubleOptions = {};
  beforeAll(async () => {
    forms = await detectForms(real.bin);
    console.log(`differential: real server ${real.bin}; reply forms ${JSON.stringify(forms)}`);
  });

  for (const script of scripts()) {
    it(script.name, async () => {
      const [want, got] = await Promise.all([transcript(script, real, forms), transcript(script, "double", forms)]);
      expect(reconcile(want, got), `double vs real, script "${script.name}"\nreal:\n  ${want.join("\n  ")}`).toEqual(
        want,
      );
    });
  }
});
