/**
 * An acquire asks in its own frame (Attempts.send/answered/failed): a close()
 * or release() during it, then a new acquire with the same signal, leaves only
 * the new call's abort listener, and none once it holds.
 */
import { beforeEach, expect, it } from "vitest";
import { DistributedLock } from "../../src/primitive.ts";
import { tick, usePoolTest } from "../support/pool.ts";
import { type PeerEnd, type ScriptedRuntime, token } from "../support/scripted-peer.ts";

const runtime = usePoolTest();
let rt: ScriptedRuntime;
let port = 7950;
let servers: [string, number][];
beforeEach(() => {
  rt = runtime();
  servers = [["127.0.0.1", ++port]];
});

/** A signal that counts its listeners. */
function countedSignal(): [AbortController, () => number] {
  const ac = new AbortController();
  let n = 0;
  const add = ac.signal.addEventListener.bind(ac.signal);
  const remove = ac.signal.removeEventListener.bind(ac.signal);
  const live = new Set<unknown>();
  ac.signal.addEventListener = ((t: string, l: EventListener, o?: unknown) => {
    if (!live.has(l)) n++;
    live.add(l);
    add(t, l, o as AddEventListenerOptions);
  }) as typeof ac.signal.addEventListener;
  ac.signal.removeEventListener = ((t: string, l: EventListener, o?: unknown) => {
    if (live.delete(l)) n--;
    remove(t, l, o as EventListenerOptions);
  }) as typeof ac.signal.removeEventListener;
  return [ac, () => n];
}

for (const how of ["close", "release"] as const) {
  it(`${how}() during an acquire, then a new acquire with the same signal: no listener left, the new one cancellable`, async () => {
    const [ac, listeners] = countedSignal();
    const lock = new DistributedLock({ key: "k", leaseTtlS: 10, servers });
    const first = lock.acquire({ signal: ac.signal, timeoutS: 5 }).catch((e: unknown) => e);
    const peer0 = await rt.peer();
    await peer0.nextRequest(1);
    expect(listeners()).toBeGreaterThan(0);
    if (how === "close") lock.close();
    else await lock.release();
    const second = lock.acquire({ signal: ac.signal, timeoutS: 5 }).catch((e: unknown) => e);
    expect(await first).toMatchObject({ code: "ABORTED" });
    const peer1 = (await rt.peer()) as PeerEnd;
    await peer1.nextRequest(1);
    await tick();
    // Only the second acquire's listener.
    expect(listeners()).toBe(1);
    peer1.send(`ok ${token(2)} 10\n`);
    expect(await second).toBe(true);
    await tick();
    expect(listeners()).toBe(0);
    // Aborting now closes nothing.
    ac.abort();
    expect(peer1.closedByClient).toBe(false);
    expect(lock.state).toBe("held");
    lock.close();
  });
}
