/**
 * A long fault-injection run (not a test): many trials of one or all
 * scenarios, then the same summary as safety.test.ts. Exits 1 if any trial
 * overlapped for certain.
 *
 * ```sh
 * bun test/faults/soak.ts --trials 100 --scenario delayed
 * DFLOCKD_BIN=/path/to/dflockd bun test/faults/soak.ts --trials 200 --scenario all --lease 1
 * deno run -A --node-modules-dir=manual test/faults/soak.ts --trials 50 --scenario kill --verbose
 * ```
 *
 * Options: `--trials N` per scenario (default 20); `--scenario delayed|cutoff|kill|all`
 * (default all); `--mode poll|queue|both` (default both, alternating);
 * `--lease S` (whole seconds, default 2); `--concurrency C` (default 8; kill
 * trials at most 4, each has its own server); `--seed N`; `--verbose` (every
 * trial on a line). The server is the real binary in `DFLOCKD_BIN` if set,
 * else the in-process double.
 */
import process from "node:process";
import { type DflockdServer, startDflockd } from "../harness/dflockd.ts";
import { RUNTIME } from "../support/runtime.ts";
import type { ContenderMode } from "./raw.ts";
import { runServer, type ServerSpec, serverLabel } from "./servers.ts";
import { describeTrial, formatSummary, summarize } from "./summary.ts";
import { runTrial, runTrials, SCENARIOS, type Scenario, seededRng, type TrialRecord } from "./trial.ts";

interface SoakArgs {
  trials: number;
  scenarios: Scenario[];
  modes: ContenderMode[];
  leaseS: number;
  concurrency: number;
  seed: number;
  verbose: boolean;
}

function usage(problem: string): never {
  console.error(`soak: ${problem}`);
  console.error(
    "usage: soak.ts [--trials N] [--scenario delayed|cutoff|kill|all] [--mode poll|queue|both] " +
      "[--lease S] [--concurrency C] [--seed N] [--verbose]",
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]): SoakArgs {
  const a: SoakArgs = {
    trials: 20,
    scenarios: [...SCENARIOS],
    modes: ["poll", "queue"],
    leaseS: 2,
    concurrency: 8,
    seed: Math.floor(Math.random() * 2 ** 31),
    verbose: false,
  };
  const int = (v: string | undefined, name: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) usage(`${name} needs a whole number >= ${min}, got ${String(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === "--verbose") {
      a.verbose = true;
      continue;
    }
    i++;
    if (flag === "--trials") a.trials = int(value, flag, 1);
    else if (flag === "--lease") a.leaseS = int(value, flag, 1);
    else if (flag === "--concurrency") a.concurrency = int(value, flag, 1);
    else if (flag === "--seed") a.seed = int(value, flag, 0);
    else if (flag === "--scenario") {
      if (value === "all") a.scenarios = [...SCENARIOS];
      else if (SCENARIOS.includes(value as Scenario)) a.scenarios = [value as Scenario];
      else usage(`unknown scenario ${String(value)}`);
    } else if (flag === "--mode") {
      if (value === "both") a.modes = ["poll", "queue"];
      else if (value === "poll" || value === "queue") a.modes = [value];
      else usage(`unknown mode ${String(value)}`);
    } else usage(`unknown option ${String(flag)}`);
  }
  return a;
}

async function soakScenario(args: SoakArgs, spec: ServerSpec, scenario: Scenario, s: number): Promise<TrialRecord[]> {
  const shared: DflockdServer | undefined =
    scenario === "kill" ? undefined : await startDflockd([...spec.flags], spec.choice);
  const started = performance.now();
  let done = 0;
  try {
    const concurrency = scenario === "kill" ? Math.min(4, args.concurrency) : args.concurrency;
    return await runTrials(args.trials, concurrency, async (i) => {
      const r = await runTrial({
        scenario,
        mode: args.modes[i % args.modes.length] as ContenderMode,
        leaseS: args.leaseS,
        rng: seededRng(args.seed + 100_003 * s + i),
        server: spec,
        shared,
        tag: `soak${process.pid}-${i}`,
      });
      done++;
      if (args.verbose || r.verdict === "OVERLAP") console.log(`  #${i} ${describeTrial(r)}`);
      else if (done % 10 === 0) console.log(`  ${scenario}: ${done}/${args.trials} trials`);
      return r;
    });
  } finally {
    await shared?.stop();
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`  ${scenario}: ${done} trials in ${secs} s`);
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const bin = process.env.DFLOCKD_BIN;
  const spec = runServer(bin !== undefined && bin !== "" ? { bin } : "double");
  console.log(
    `soak: ${RUNTIME} against ${serverLabel(spec)}; ${args.trials} trials per scenario ` +
      `(${args.scenarios.join(", ")}; contender ${args.modes.join("/")}), lease ${args.leaseS} s, seed ${args.seed}`,
  );
  const lines: string[] = [];
  let overlaps = 0;
  for (const [s, scenario] of args.scenarios.entries()) {
    const records = await soakScenario(args, spec, scenario, s);
    overlaps += records.filter((r) => r.verdict === "OVERLAP").length;
    for (const mode of args.modes) {
      const group = records.filter((r) => r.mode === mode);
      lines.push(formatSummary(summarize(`[${RUNTIME}, ${serverLabel(spec)}] ${scenario}/${mode}`, group)));
    }
  }
  console.log("\nsummary:");
  for (const l of lines) console.log(l);
  return overlaps === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
