/**
 * holdAll()'s one budget, under fake timers: `timeoutS: Infinity` sets no
 * timer at all (a runtime timer is clamped to 2^31 - 1 ms, about 24.8 days,
 * and would end the wait then), as `hold({ timeoutS: Infinity })` does.
 */
import { expect, it } from "vitest";
import { DflockdClient } from "../../src/client.ts";
import { tick, useLockTest } from "../support/lock-test.ts";

const runtime = useLockTest();

/** Start `start()`, let 2^31 ms pass, and say whether it is still waiting. */
async function pendingAfterMaxTimer(start: (client: DflockdClient) => Promise<unknown>): Promise<unknown> {
  const rt = runtime();
  const client = new DflockdClient();
  let settled: unknown = "pending";
  const p = start(client).then(
    (v) => {
      settled = v;
    },
    (e: unknown) => {
      settled = e;
    },
  );
  const peer = await rt.peer();
  const request = await peer.nextRequest(1);
  expect(request).toEqual(["l", "k", "2147483647"]);
  await tick(2 ** 31);
  const result = settled;
  client.close();
  await p;
  return result;
}

it("holdAll({ timeoutS: Infinity }) waits without limit: no budget timer ends it", async () => {
  expect(await pendingAfterMaxTimer((c) => c.holdAll(["k"], { timeoutS: Number.POSITIVE_INFINITY }))).toBe("pending");
});

it("as lock.hold({ timeoutS: Infinity }) does", async () => {
  expect(await pendingAfterMaxTimer((c) => c.lock("k").hold({ timeoutS: Number.POSITIVE_INFINITY }))).toBe("pending");
});
