/**
 * Which reply forms a real dflockd uses, found by asking it, so that the
 * double can be told to use the same (see DoubleOptions).
 */
import type { DoubleOptions } from "../double/server.ts";
import { startDflockd } from "../harness/dflockd.ts";
import { runScript } from "./runner.ts";

/** Start the real server at `bin` and probe each form the builds differ in. */
export async function detectForms(bin: string): Promise<DoubleOptions> {
  const server = await startDflockd([], { bin });
  try {
    const [grant, ping, , cr, cap, expired] = await runScript(
      {
        name: "probe",
        steps: [
          { c: "a", req: ["l", "probe", "0"] },
          { c: "a", req: ["ping", "_", ""] },
          { c: "a", req: ["e", "expiring", "1"] },
          { c: "a", req: ["l", "c\rr", "0"] },
          { c: "a", req: ["l", "cap", "9223372037"] },
          { sleep: 2_500 }, // past a sweep (every second by default)
          { c: "a", req: ["w", "expiring", "0"] },
        ],
      },
      server,
    );
    return {
      shutdownCloses: await cutByShutdown(bin),
      fence: (grant ?? "").split(" ").length === 5, // "a: ok <token> <ttl> [<fence>]"
      ping: ping === "a: ok",
      leaseExpired: expired === "a: error_lease_expired",
      crAnywhere: cr?.startsWith("a: ok") ?? false,
      secondsCap: cap === "a: error",
    };
  } finally {
    await server.stop();
  }
}

/** Whether a blocked `l` cut by a shutdown gets `error` (v1.10.0) or a close with no reply (later builds). */
async function cutByShutdown(bin: string): Promise<boolean> {
  const server = await startDflockd(["--shutdown-timeout", "5"], { bin });
  try {
    const [, , cut] = await runScript(
      {
        name: "probe shutdown",
        steps: [
          { c: "a", req: ["l", "k", "0"] },
          { c: "b", later: ["l", "k", "10"] },
          { c: "a", poll: ["stats", "_", ""], until: /"waiters":1/, everyMs: 10, within: [0, 3000] },
          { shutdown: true },
          { c: "b", await: 1 },
        ],
      },
      server,
    );
    return cut === "b: <closed>";
  } finally {
    await server.stop();
  }
}
