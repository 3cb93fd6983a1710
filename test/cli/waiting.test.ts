/**
 * How `lock` waits and stops, through a proxy in front of the run's dflockd:
 * `--timeout` counts the server's time to grant, not the time to connect; a
 * `--timeout` over an hour asks the server for its whole seconds (so that the
 * server's own timer ends a wait its waiter gave up); a second signal while
 * releasing does not wait for a server that stopped answering.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type FaultProxy, startProxy } from "../faults/proxy.ts";
import { type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { key, until, useDflockd } from "../integration/helpers.ts";
import { DistributedLock } from "../support/client.ts";
import { RUNTIME } from "../support/runtime.ts";
import { runCli, startCli } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "dflockd-cli-wait-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let proxy: FaultProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

/** Everything sent up through the proxy, as text. */
function sentUp(p: FaultProxy): () => string {
  let text = "";
  const decoder = new TextDecoder();
  p.observe((e) => {
    if (e.direction === "up" && e.chunk !== undefined) text += decoder.decode(e.chunk);
  });
  return () => text;
}

describe(`dflockd-client lock: --timeout counts from the request (${RUNTIME})`, () => {
  const SECRET = "wait-secret-5";
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${SECRET}\n`);
  let server: DflockdServer | undefined;
  afterAll(() => server?.stop());

  it("a free key behind a slow link is held within --timeout, connecting (and auth) not counted", async () => {
    server = await startDflockd(["--auth-token", SECRET]);
    proxy = await startProxy({ port: server.port });
    // 250 ms each way: connecting with auth takes one round trip (500 ms), the acquire another.
    proxy.setDelay("up", () => 250);
    proxy.setDelay("down", () => 250);
    const where = `127.0.0.1:${proxy.port}`;
    const r = await runCli(
      ["lock", key(), "--servers", where, "--auth-token-file", tokenFile, "--timeout", "800ms", "--", "true"],
      { deno: { net: [where], run: ["true"], read: [tokenFile] } },
    );
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
  });

  it("a server that never answers the connection's auth is unavailable (69), not busy", async () => {
    server ??= await startDflockd(["--auth-token", SECRET]);
    proxy = await startProxy({ port: server.port });
    proxy.cut();
    const where = `127.0.0.1:${proxy.port}`;
    const r = await runCli(
      ["lock", key(), "--servers", where, "--auth-token-file", tokenFile, "--timeout", "200ms", "--", "true"],
      { deno: { net: [where], run: ["true"], read: [tokenFile] } },
    );
    expect(r.code).toBe(69);
  }, 30_000);
});

describe(`dflockd-client lock: waits over an hour, and a second signal (${RUNTIME})`, () => {
  const server = useDflockd();

  it("--timeout over an hour asks the server for its whole seconds, not without limit", async () => {
    const k = key();
    const holder = new DistributedLock({ key: k, servers: [server().address] });
    expect(await holder.acquire({ timeoutS: 0 })).toBe(true);
    try {
      proxy = await startProxy({ port: server().port });
      const sent = sentUp(proxy);
      const where = `127.0.0.1:${proxy.port}`;
      const cli = await startCli(["lock", k, "--servers", where, "--timeout", "3600500ms", "-q", "--", "true"], {
        deno: { net: [where], run: ["true"] },
      });
      // 1 h 0.5 s: the server is asked for 3601 s (its own timer ends the wait), never 2^31 - 1.
      await until(() => sent().includes("\n3601\n"), 10_000, "the acquire with 3601 s");
      expect(sent()).not.toContain("2147483647");
      cli.signal("SIGTERM");
      expect((await cli.exited).code).toBe(143);
    } finally {
      await holder.release();
    }
  });

  it("a second signal while the release waits for a server that stopped answering exits at once", async () => {
    const k = key();
    proxy = await startProxy({ port: server().port });
    const where = `127.0.0.1:${proxy.port}`;
    const cli = await startCli(["lock", k, "--servers", where], { deno: { net: [where] } });
    await cli.printed("\n");
    let after = 0;
    proxy.observe((e) => {
      if (e.direction === "up" && e.chunk !== undefined) after++;
    });
    proxy.cut();
    cli.signal("SIGTERM");
    // The release went out (into the cut link): the first signal is being handled.
    await until(() => after > 0, 10_000, "the release sent");
    const t0 = performance.now();
    cli.signal("SIGTERM");
    const ended = await cli.exited;
    expect(ended.code).toBe(143);
    expect(performance.now() - t0).toBeLessThan(5_000);
    await cli.closed;
    expect(cli.err()).toContain("SIGTERM again: the release was not waited for");
    // The connection closed, so the server freed the lock (auto-release).
    proxy.restore();
    const next = new DistributedLock({ key: k, servers: [server().address] });
    expect(await next.acquire({ timeoutS: 5 })).toBe(true);
    await next.release();
  });

  it("a signal after the command ended, while its release waits for a silent server, exits at once with its status", async () => {
    const k = key();
    const go = join(dir, `go-${k}`);
    proxy = await startProxy({ port: server().port });
    const where = `127.0.0.1:${proxy.port}`;
    const script = `echo started; while [ ! -e '${go}' ]; do sleep 0.05; done; exit 3`;
    const cli = await startCli(["lock", k, "--servers", where, "--", "sh", "-c", script], {
      deno: { net: [where], run: ["sh"] },
    });
    await cli.printed("started\n");
    let after = 0;
    proxy.observe((e) => {
      if (e.direction === "up" && e.chunk !== undefined) after++;
    });
    proxy.cut();
    writeFileSync(go, "");
    // The command ended and the release went out (into the cut link).
    await until(() => after > 0, 10_000, "the release sent");
    const t0 = performance.now();
    cli.signal("SIGTERM");
    const ended = await cli.exited;
    expect(ended.code).toBe(3);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});
