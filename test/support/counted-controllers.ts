/**
 * Set-up of the tests that count allocations (test/unit/lazy-signal.test.ts,
 * new-instance.test.ts): `AbortController` replaced by a subclass that counts
 * its constructions, and a scripted peer that grants every acquire; both
 * undone, and the shared pool emptied, after each test.
 */
import { afterEach, beforeEach } from "vitest";
import { sharedPool } from "../../src/pool.ts";
import { token, useScriptedRuntime } from "./scripted-peer.ts";

/** Install the hooks; returns how many `AbortController`s have been made so far. */
export function useCountedControllers(): () => number {
  let made = 0;
  const Original = globalThis.AbortController;
  class CountingController extends Original {
    constructor() {
      super();
      made++;
    }
  }
  beforeEach(() => {
    globalThis.AbortController = CountingController;
    const rt = useScriptedRuntime();
    let n = 0;
    rt.onPeer = (peer) => {
      peer.onRequest = ([cmd]) => peer.send(cmd === "l" ? `ok ${token(++n)} 30\n` : "ok\n");
    };
  });
  afterEach(() => {
    globalThis.AbortController = Original;
    sharedPool.closeIdle();
  });
  return () => made;
}
