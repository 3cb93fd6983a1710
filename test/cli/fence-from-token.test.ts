/**
 * `--fence-from-token`: the command's DFLOCKD_FENCE from a dflockd v2.1
 * token, against a scripted fake (test/support/scripted-cluster.ts: no
 * server we can run here sends v2.1's tokens), through the command line as a
 * child process of the runtime under test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { key } from "../integration/helpers.ts";
import { RUNTIME } from "../support/runtime.ts";
import { fencedToken, type ScriptedServer, startScripted } from "../support/scripted-cluster.ts";
import { runCli } from "./helpers.ts";

// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell's parameter expansion, not a template
const PRINT_FENCE = ["sh", "-c", 'echo "fence=${DFLOCKD_FENCE-unset}"'];

describe(`dflockd-client --fence-from-token (${RUNTIME})`, () => {
  const base = 1_716_980_460_237_870_309n;
  let fence = base;
  let server: ScriptedServer;
  beforeAll(async () => {
    server = await startScripted((r) =>
      r.cmd === "l" ? `ok ${fencedToken(++fence)} 30` : r.cmd === "r" ? "ok" : "error",
    );
  });
  afterAll(() => server.stop());
  const run = (flags: string[]) =>
    runCli(["lock", key(), "--servers", server.address, ...flags, "--", ...PRINT_FENCE], {
      deno: { net: [server.address], run: ["sh"] },
    });

  it("gives the command the token's fence as decimal text, rising with each grant", async () => {
    const a = await run(["--fence-from-token"]);
    expect(a.code).toBe(0);
    expect(a.out.trim()).toBe(`fence=${fence}`);
    const b = await run(["--fence-from-token"]);
    expect(b.out.trim()).toBe(`fence=${fence}`);
    expect(fence).toBe(base + 2n);
  });

  it("without it, no fence: the same token shape is random on v1.x and v2.0", async () => {
    const r = await run([]);
    expect(r.code).toBe(0);
    // Without a plain --allow-env, Deno cannot drop a variable it may not read, so it empties it.
    expect(r.out.trim()).toBe(RUNTIME === "deno" ? "fence=" : "fence=unset");
  });
});
