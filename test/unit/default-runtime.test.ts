/**
 * The default runtime is the first one an entry point installs: an entry
 * loaded later (`dflockd-client/node` after `dflockd-client`, or the other
 * way round) offers its own, and does not replace it. Each case loads the
 * entries into a fresh module graph (vi.resetModules), as a process would.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Runtime } from "../../src/transport.ts";

type TransportModule = typeof import("../../src/transport.ts");

/** The runtime mod.ts picks on the host running the tests. */
function hostRuntimeName(): string {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  return g.Deno !== undefined ? "deno" : g.Bun !== undefined ? "bun" : "node";
}

afterEach(() => {
  vi.resetModules();
});

describe("the default runtime: the first installed stays", () => {
  it("dflockd-client, then /node and /bun: the host's runtime stays the default", async () => {
    vi.resetModules();
    const transport: TransportModule = await import("../../src/transport.ts");
    await import("../../mod.ts");
    const first = transport.runtime();
    expect(first.name).toBe(hostRuntimeName());
    const node = (await import("../../adapters/node/index.ts")).nodeRuntime;
    const bun = (await import("../../adapters/bun/index.ts")).bunRuntime;
    expect(transport.runtime()).toBe(first);
    // The entries still hand out their own runtime, for the runtime option.
    expect([node.name, bun.name]).toEqual(["node", "bun"]);
  });

  it("/bun first, then dflockd-client and /node: Bun's runtime stays the default, even off Bun", async () => {
    vi.resetModules();
    const transport: TransportModule = await import("../../src/transport.ts");
    const { bunRuntime } = await import("../../adapters/bun/index.ts");
    await import("../../mod.ts");
    await import("../../adapters/node/index.ts");
    expect(transport.runtime()).toBe(bunRuntime);
  });

  it("installRuntime() returns the default in effect and keeps the first", async () => {
    vi.resetModules();
    const transport: TransportModule = await import("../../src/transport.ts");
    const a = { name: "a" } as Runtime;
    const b = { name: "b" } as Runtime;
    expect(transport.installRuntime(a)).toBe(a);
    expect(transport.installRuntime(b)).toBe(a);
    expect(transport.runtime()).toBe(a);
  });

  it("a foreign runtime loaded first does not break timers: a handle with unref() is unref'd by it", async () => {
    vi.resetModules();
    const transport: TransportModule = await import("../../src/transport.ts");
    // As `/deno` loaded first on Node: its unrefTimer names a global the host lacks.
    const foreign = {
      name: "foreign",
      unrefTimer(): void {
        throw new ReferenceError("Deno is not defined");
      },
    } as unknown as Runtime;
    transport.installRuntime(foreign);
    const fired = await new Promise<boolean>((resolve) => {
      const t = transport.backgroundTimer(() => resolve(true), 1);
      const hasRef = (t as { hasRef?: () => boolean }).hasRef;
      if (typeof hasRef === "function") expect(hasRef.call(t)).toBe(false);
    });
    expect(fired).toBe(true);
  });
});
