/**
 * Set-ups for the driver-level checks of I1-I3 (test/unit/lifecycle-model.test.ts):
 * a scripted runtime whose peers a {@link LossWatch} observes, a scripted
 * server that answers from a random script with a fresh token per grant, and
 * two locks of one client holding on one shared connection.
 */
import { expect } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { ConnectionPool, sharedPool } from "../../src/pool.ts";
import { DistributedLock, type LockOptions } from "../../src/primitive.ts";
import { LossWatch } from "./loss-watch.ts";
import { type PeerEnd, type ScriptedRuntime, token, useScriptedRuntime } from "./scripted-peer.ts";

/** A fresh scripted runtime whose peers the returned watch observes (the shared pool emptied first). */
export function watched(): { rt: ScriptedRuntime; watch: LossWatch } {
  sharedPool.closeIdle();
  const watch = new LossWatch();
  const rt = useScriptedRuntime();
  rt.onPeer = (peer) => watch.peer(peer);
  return { rt, watch };
}

/** Answer request `n` on `peer` with a grant of `lease` seconds and token `t`, told to the watch first. */
export async function grant(watch: LossWatch, peer: PeerEnd, n: number, t: string, lease: number): Promise<void> {
  await peer.nextRequest(n);
  watch.granted(peer, t);
  peer.send(`ok ${t} ${lease}\n`);
}

/** A lock called `k` (watched) holding a grant of `lease` seconds on the first peer. */
export async function loneHolding(
  rt: ScriptedRuntime,
  watch: LossWatch,
  lease: number,
  options: Omit<LockOptions, "key"> = {},
): Promise<{ lock: DistributedLock; peer: PeerEnd }> {
  const lock = new DistributedLock({ key: "k", leaseTtlS: lease, ...watch.options("k"), ...options });
  watch.attach("k", lock);
  const p = lock.acquire();
  const peer = await rt.peer();
  await grant(watch, peer, 1, token(1), lease);
  expect(await p).toBe(true);
  return { lock, peer };
}

/**
 * Two locks of one client (sharing connections at once) holding on one
 * connection: `a` with a 4 s lease, `b` with 30 s; renewals are never
 * answered unless the test does. The caller restores
 * `ConnectionPool.defaultShareAfter` and closes the client.
 */
export async function sharing(
  rt: ScriptedRuntime,
  watch: LossWatch,
): Promise<{ client: DflockdClient; a: DistributedLock; b: DistributedLock; peer: PeerEnd }> {
  ConnectionPool.defaultShareAfter = 0;
  const client = new DflockdClient({ requestTimeoutMs: 60_000 });
  const a = client.lock("a", { leaseTtlS: 4, ...watch.options("a") });
  const b = client.lock("b", { leaseTtlS: 30, ...watch.options("b") });
  watch.attach("a", a);
  watch.attach("b", b);
  const pa = a.acquire();
  const peer = await rt.peer();
  await grant(watch, peer, 1, token(1), 4);
  expect(await pa).toBe(true);
  const pb = b.acquire();
  await grant(watch, peer, 2, token(2), 30);
  expect(await pb).toBe(true);
  expect(rt.peers.length).toBe(1);
  return { client, a, b, peer };
}

/** Answers per command family; `@` becomes a token of its own, so the watch knows where each holding is. */
const ANSWERS: Record<string, string[]> = {
  grant: ["ok @ 2\n", "ok @ 2 77\n", "ok @ 2\n", "timeout\n", "error_max_locks\n"],
  enqueue: ["acquired @ 2\n", "queued\n", "queued\n", "error_max_waiters\n"],
  renew: ["ok 2\n", "ok 2\n", "ok 1\n", "error_lease_expired\n", "garbage\n"],
  release: ["ok\n", "ok\n", "error\n"],
};
/** The reply family of each command word. */
export const FAMILY: Readonly<Record<string, string>> = {
  l: "grant",
  sl: "grant",
  w: "grant",
  sw: "grant",
  e: "enqueue",
  se: "enqueue",
  n: "renew",
  sn: "renew",
  r: "release",
  sr: "release",
};
/** How long the server takes to answer: at once, soon, past the renewal point, past the request timeout, or never. */
export const DELAYS: readonly number[] = [0, 0, 5, 300, 1600, -1];

/** One scripted answer: which form (`pick`) and how late (`delay`, an index into the delays). */
export interface Answer {
  readonly pick: number;
  readonly delay: number;
}

/** How many delays {@link Answer.delay} picks from. */
export const DELAY_CHOICES: number = DELAYS.length;

/**
 * A scripted server answering every request in order from `answers` (round
 * robin), telling `watch` of each grant's token and connection. An answer
 * that never comes stalls the connection, as a real one would.
 */
export function scriptedServer(watch: LossWatch, answers: readonly Answer[]): ScriptedRuntime {
  const rt = useScriptedRuntime();
  let next = 0;
  let tokens = 0;
  rt.onPeer = (peer) => {
    watch.peer(peer);
    let chain = Promise.resolve();
    peer.onRequest = (req) => {
      const a = answers[next++ % answers.length] as Answer;
      const cmd = req[0] as string;
      const forms = ANSWERS[FAMILY[cmd] ?? "release"] as string[];
      let line = forms[a.pick % forms.length] as string;
      // A third of the answers come at once: stalls stop every lock on the connection, so keep them rarer.
      const delay = a.pick % 3 === 0 ? 0 : (DELAYS[a.delay % DELAYS.length] as number);
      chain = chain.then(async () => {
        if (delay < 0) return new Promise<void>(() => {});
        await new Promise((r) => setTimeout(r, delay));
        if (line.includes("@")) {
          const t = token(++tokens);
          line = line.replace("@", t);
          watch.granted(peer, t);
        }
        peer.send(line);
      });
    };
  };
  return rt;
}
