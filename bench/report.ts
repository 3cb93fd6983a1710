/**
 * The printed report of `npm run bench` (bench/run.ts): per runtime, the
 * absolute numbers and the ratios that matter (bench/ratios.ts), each beside
 * its target; then the runtimes side by side. Targets are information only:
 * nothing here decides an exit code.
 */
import {
  type Latency,
  lat,
  type MsSummary,
  type OpenLoop,
  type Outcome,
  ok,
  type Paired,
  type Ratios,
  type RuntimeResult,
  ratios,
  type Throughput,
  type ThroughputCase,
  tp,
} from "./ratios.ts";

/** A target: its text and whether a value meets it. */
interface Target {
  text: string;
  met(x: number): boolean;
}
const atLeast = (b: number, unit = "×"): Target => ({ text: `≥ ${b}${unit}`, met: (x) => x >= b });
const atMost = (b: number, unit = "×"): Target => ({ text: `≤ ${b}${unit}`, met: (x) => x <= b });
const below = (b: number, unit: string): Target => ({ text: `< ${b}${unit}`, met: (x) => x < b });

/** The targets (information only). */
export const TARGETS = {
  dlOverFloor: atLeast(0.8),
  dlWithLockOverFloor: atLeast(0.8),
  dlNewOverFloor: atLeast(0.8),
  scaling: atLeast(0.8),
  /** Set (issue 9) against the floor of that time: on Node the one that reads through 'data' events. */
  lowOverData: atLeast(0.95),
  lowCpuOverRaw: atMost(1.2),
  handoffDlOverRtt: atMost(2),
  heapKiBPerLock: atMost(2, " KiB"),
  rssKiBPerLock: atMost(8, " KiB"),
  massReleaseS: atMost(3, " s"),
  massReleaseErrors: atMost(0, ""),
  massLosses: atMost(0, ""),
  lagP99Ms: below(100, " ms"),
} satisfies Record<string, Target>;
type Targeted = keyof typeof TARGETS;

const int = (x: number): string => Math.round(x).toLocaleString("en-US");
const us = (x: number): string => `${x < 10 ? x.toFixed(2) : x.toFixed(1)} µs`;
const ms = (x: number): string => `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms`;
/** Two decimals, or three where two would round onto the target's bound and hide which side it is on. */
function fixed(t: Target | undefined, x: number): string {
  const two = x.toFixed(2);
  return t !== undefined && t.met(Number(two)) !== t.met(x) ? x.toFixed(3) : two;
}
const times = (x: number | undefined, t?: Target): string => (x === undefined ? "n/a" : `${fixed(t, x)}×`);
/** "✓ target ..." / "✗ target ..." for `x`, or "" without a value. */
const mark = (k: Targeted, x: number | undefined): string => {
  const t = TARGETS[k];
  return x === undefined ? "" : `${t.met(x) ? "✓" : "✗"} target ${t.text}`;
};
const tick = (k: Targeted, x: number | undefined): string => (x === undefined ? "  " : TARGETS[k].met(x) ? " ✓" : " ✗");
/** A floor's name: Node's two are told apart by how they read; Bun and Deno have one, "raw". */
const floorName = (f: ThroughputCase, node: boolean): string =>
  !node ? "raw" : f === "raw" ? "'data'" : f === "raw-onread" ? "onread" : f;
/** Whether a runtime's results have Node's two floors. */
const twoFloors = (r: RuntimeResult): boolean => r.cases["raw-onread"] !== undefined;

/** Why a case has no numbers, or the warnings that go with them. */
function problems(
  x: { error: string } | { errors?: { count: number; messages: string[] } | undefined } | undefined,
): string {
  if (x === undefined) return "not run";
  if ("error" in x) return `FAILED: ${x.error}`;
  if (x.errors === undefined) return "";
  return `(${x.errors.count} error(s): ${x.errors.messages.join(" | ")})`;
}

const head = (label: string): string => `  ${label.padEnd(28)}`;

function throughputLine(label: string, x: Outcome<Throughput> | undefined, extra = ""): string {
  const t = tp(x);
  if (t === undefined) return `${head(label)}${problems(x) || "no complete window"}`;
  const sorted = t.windows.map((w) => w.opsPerS).sort((a, b) => a - b);
  const q = (p: number): string => int(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0);
  const spread = `${sorted.length} slices, p10–p90 ${q(0.1)}–${q(0.9)}`;
  const failed = t.failedWorkers > 0 ? ` [${t.failedWorkers}/${t.workers} workers failed]` : "";
  const overlaps = t.overlaps ? ` [${t.overlaps} slices left out: another case's operations were still in flight]` : "";
  return `${head(label)}${int(t.opsPerS).padStart(9)} ops/s  ${us(t.cpuUsPerOp).padStart(9)} CPU/op  (${spread})${extra}${failed}${overlaps} ${problems(x)}`.trimEnd();
}

function latencyLine(label: string, x: Outcome<Latency> | undefined, extra = ""): string {
  const l = lat(x);
  if (l === undefined) return `${head(label)}${x !== undefined && "error" in x ? `FAILED: ${x.error}` : "not run"}`;
  const unconfirmed = l.unconfirmed ? ` [${l.unconfirmed} rounds without a confirmed waiter]` : "";
  const beside = lat(l.rtt) === undefined ? "" : ` RTT beside it p50 ${us((l.rtt as Latency).p50Us)};`;
  return `${head(label)}p50 ${us(l.p50Us).padStart(9)}  p90 ${us(l.p90Us).padStart(9)}  (n=${l.n})${beside}${extra}${unconfirmed}`;
}

const summary = (s: MsSummary): string => `p50 ${ms(s.p50Ms)}  p99 ${ms(s.p99Ms)}  max ${ms(s.maxMs)}`;

function openLoopLine(label: string, x: Outcome<OpenLoop> | undefined, extra = ""): string {
  const o = ok(x);
  if (o === undefined) return `${head(label)}${problems(x)}`;
  const late = o.unfinished > 0 ? ` [${o.unfinished} unfinished]` : "";
  return `${head(label)}${summary(o.latency)}  (service p50 ${ms(o.service.p50Ms)} p99 ${ms(o.service.p99Ms)}; ${int(o.achievedPerS)}/s done, backlog ≤ ${o.maxBacklog})${extra}${late} ${problems(x)}`.trimEnd();
}

/** "[lowest–highest]": the ratios of single rounds. */
const range = (p: Paired | undefined): string =>
  p === undefined || p.lo === p.hi ? "" : ` [${p.lo.toFixed(2)}–${p.hi.toFixed(2)}]`;
const ratioText = (x: number | undefined, what: string, k?: Targeted, p?: Paired): string =>
  x === undefined ? "" : `   ${times(x, k && TARGETS[k])}${range(p)} ${what}  ${k ? mark(k, x) : ""}`.trimEnd();

/** The section of one runtime. */
export function runtimeSection(name: string, r: RuntimeResult): string[] {
  const q = ratios(r);
  const c = r.cases;
  const l = ok(c.latency);
  const node = twoFloors(r);
  const vs = `floor (${floorName(q.floor, node)})`;
  const sp = q.spreads;
  const lines = [`${name} ${r.version ?? ""}`.trimEnd()];
  lines.push(
    `  50 workers; ratios against the ${floorName(q.floor, node)} floor${node ? " (the faster of the two; the low-level targets against the 'data' floor, as they were set)" : ""}`,
  );
  lines.push(throughputLine(node ? "raw floor ('data')" : "raw floor", c.raw));
  if (c["raw-onread"] !== undefined)
    lines.push(
      throughputLine(
        "raw floor (onread)",
        c["raw-onread"],
        ratioText(q.onreadOverData, "'data' floor", undefined, sp.onreadOverData),
      ),
    );
  // The low-level targets were set (issue 9) against the floor of the time, which read through 'data' events on
  // Node; the ratios to Node's onread floor are shown beside them, unmarked.
  const raw = node ? "floor ('data')" : "floor";
  lines.push(
    throughputLine(
      "low-level",
      c.lowlevel,
      [
        ratioText(q.lowOverData, raw, "lowOverData", sp.lowOverData),
        ratioText(q.lowCpuOverRaw, `${raw} CPU/op`, "lowCpuOverRaw", sp.lowCpuOverRaw),
        ratioText(q.lowOverOnread, "floor (onread)", undefined, sp.lowOverOnread),
        ratioText(q.lowCpuOverOnread, "floor (onread) CPU/op", undefined, sp.lowCpuOverOnread),
      ]
        .filter((t) => t !== "")
        .join(";"),
    ),
  );
  lines.push(throughputLine("DistributedLock", c.dl, ratioText(q.dlOverFloor, vs, "dlOverFloor", sp.dlOverFloor)));
  lines.push(
    throughputLine(
      "DL withLock",
      c["dl-withlock"],
      ratioText(q.dlWithLockOverFloor, vs, "dlWithLockOverFloor", sp.dlWithLockOverFloor),
    ),
  );
  lines.push(
    throughputLine("DL new per op", c["dl-new"], ratioText(q.dlNewOverFloor, vs, "dlNewOverFloor", sp.dlNewOverFloor)),
  );
  lines.push(
    throughputLine(
      "DflockdClient lock, reused",
      c.client,
      ratioText(q.clientOverFloor, vs, undefined, sp.clientOverFloor),
    ),
  );
  lines.push(
    throughputLine(
      "client.lock(k).withLock",
      c["client-withlock"],
      ratioText(q.clientWithLockOverFloor, vs, undefined, sp.clientWithLockOverFloor),
    ),
  );

  lines.push("  scaling: DistributedLock (reused) ÷ floor, taking turns in one process per round");
  if (q.scaling.length === 0) lines.push(`${head("")}not run`);
  for (const p of q.scaling) {
    const cases = r.scaling?.[String(p.workers)] ?? {};
    const why = p.ratio === undefined ? ` ${problems(cases.dl) || problems(cases[p.floor]) || "no windows"}` : "";
    lines.push(
      `${head(`  ${int(p.workers)} worker${p.workers === 1 ? "" : "s"}`)}floor (${floorName(p.floor, node)}) ${p.floorOpsPerS === undefined ? "n/a" : int(p.floorOpsPerS)} ops/s, DL ${p.dlOpsPerS === undefined ? "n/a" : int(p.dlOpsPerS)} ops/s  ${times(p.ratio, TARGETS.scaling)}${range(p.spread)}  ${mark("scaling", p.ratio)}${why}`.trimEnd(),
    );
  }

  const open = c.openloop;
  if (open !== undefined && "error" in open) lines.push(`  open loop: FAILED: ${open.error}`);
  else {
    const f = ok(open?.floor);
    lines.push(
      `  open loop at ${f ? `${int(f.rate)}/s (half the floor's saturated ops/s at 50 workers)` : "half the floor's rate"}; latency from the intended arrival`,
    );
    lines.push(openLoopLine(`  floor (${floorName((f?.via ?? "raw") as ThroughputCase, node)})`, open?.floor));
    lines.push(
      openLoopLine(
        "  DistributedLock",
        open?.dl,
        q.openLoopP99Ratio === undefined
          ? ""
          : `   p99 ${times(q.openLoopP99Ratio)} floor's (p50 ${times(q.openLoopP50Ratio)})`,
      ),
    );
  }

  if (c.latency !== undefined && "error" in c.latency) lines.push(`${head("latency")}FAILED: ${c.latency.error}`);
  else {
    lines.push(latencyLine("RTT raw, back to back", l?.rtt));
    lines.push(latencyLine("hand-off raw", l?.handoffRaw, ratioText(q.handoffRawOverRtt, "RTT")));
    lines.push(
      latencyLine("hand-off DistributedLock", l?.handoffDl, ratioText(q.handoffDlOverRtt, "RTT", "handoffDlOverRtt")),
    );
  }
  lines.push(...massLines(r));
  return lines;
}

function massLines(r: RuntimeResult): string[] {
  const m = ok(r.cases.mass);
  if (m === undefined) return [`  held locks: ${problems(r.cases.mass)}`];
  const out = [
    `  held locks: ${int(m.held)}/${int(m.asked)} acquired in ${m.acquireS.toFixed(1)} s (leaseTtlS ${m.leaseTtlS}${m.gc ? "" : ", NO forced GC"}) ${problems(m)}`.trimEnd(),
  ];
  for (const p of m.checkpoints) {
    const heap = p.held > 0 ? p.heapKiBPerLock : undefined;
    const rss = p.held > 0 ? p.rssKiBPerLock : undefined;
    out.push(
      `${head(`  per lock at ${int(p.held)}`)}heap ${heap === undefined ? "n/a" : `${fixed(TARGETS.heapKiBPerLock, heap)} KiB`} ${mark("heapKiBPerLock", heap)};  RSS ${rss === undefined ? "n/a" : `${fixed(TARGETS.rssKiBPerLock, rss)} KiB`} ${mark("rssKiBPerLock", rss)}`,
    );
  }
  out.push(
    `${head(`  event-loop lag, ${m.lagS} s held`)}${summary(m.lagHeld)}  ${mark("lagP99Ms", m.lagHeld.p99Ms)}  (idle before: p99 ${ms(m.lagIdle.p99Ms)}; renewals in the window on the 1-in-100 sample: ${m.sample.renewedInWindow} by ${m.sample.locks} locks)`,
  );
  const errs = m.releaseErrors?.count ?? 0;
  out.push(
    `${head("  mass release, all at once")}${m.releaseS.toFixed(2)} s ${mark("massReleaseS", m.releaseS)};  ${errs} errors ${mark("massReleaseErrors", errs)};  ${m.losses} lost ${mark("massLosses", m.losses)}`,
  );
  out.push(
    `${head("")}(onLost while acquiring ${m.lost.acquire}, holding ${m.lost.hold}, releasing ${m.lost.release}; found lost by release() ${m.lost.foundByRelease}; hooks.lost on the sample ${m.sample.lost}; held just before the release ${int(m.stillHeld)})`,
  );
  if (m.releaseErrors !== undefined) out.push(`${head("")}release errors: ${m.releaseErrors.messages.join(" | ")}`);
  if (m.warmError !== undefined) out.push(`${head("")}the warm-up acquire/release failed: ${m.warmError}`);
  return out;
}

/** Rows of the side-by-side table: label, the cell of a runtime, and the target the cell is marked against. */
type Row = [string, (r: RuntimeResult, q: Ratios) => string, Targeted | "", (q: Ratios) => number | undefined];
const none = (): undefined => undefined;

function rows(results: Record<string, RuntimeResult>): Row[] {
  const counts = [...new Set(Object.values(results).flatMap((r) => ratios(r).scaling.map((p) => p.workers)))].sort(
    (a, b) => a - b,
  );
  const at = (q: Ratios, w: number) => q.scaling.find((p) => p.workers === w)?.ratio;
  const points = Math.max(0, ...Object.values(results).map((r) => ok(r.cases.mass)?.checkpoints.length ?? 0));
  const checkpoint = (r: RuntimeResult, i: number) => ok(r.cases.mass)?.checkpoints[i];
  const perLock = (label: string, k: "heapKiBPerLock" | "rssKiBPerLock"): Row[] =>
    Array.from(
      { length: points },
      (_, i): Row => [
        `${label} per lock @${i === 0 ? "small" : "mass"}`,
        (r, q) => {
          const x = q[k][i];
          return x === undefined ? "n/a" : `${x.toFixed(2)} KiB@${int(checkpoint(r, i)?.held ?? 0)}`;
        },
        k,
        (q) => q[k][i],
      ],
    );
  const ratioRow = (label: string, get: (q: Ratios) => number | undefined, k: Targeted | ""): Row => [
    label,
    (_, q) => times(get(q), k === "" ? undefined : TARGETS[k]),
    k,
    get,
  ];
  return [
    ["floor used (Node: faster)", (r, q) => floorName(q.floor, twoFloors(r)), "", none],
    ["floor ops/s", (r, q) => cell(tp(r.cases[q.floor])?.opsPerS, int), "", none],
    ["DistributedLock ops/s", (r) => cell(tp(r.cases.dl)?.opsPerS, int), "", none],
    ratioRow("low-level ÷ floor (Node: 'data')", (q) => q.lowOverData, "lowOverData"),
    ratioRow("low-level ÷ onread floor", (q) => q.lowOverOnread, ""),
    ratioRow("low-level CPU/op ÷ floor's", (q) => q.lowCpuOverRaw, "lowCpuOverRaw"),
    ratioRow("DistributedLock ÷ floor", (q) => q.dlOverFloor, "dlOverFloor"),
    ratioRow("DL withLock ÷ floor", (q) => q.dlWithLockOverFloor, "dlWithLockOverFloor"),
    ratioRow("DL new per op ÷ floor", (q) => q.dlNewOverFloor, "dlNewOverFloor"),
    ratioRow("client lock ÷ floor", (q) => q.clientOverFloor, ""),
    ratioRow("client withLock ÷ floor", (q) => q.clientWithLockOverFloor, ""),
    ...counts.map((w) => ratioRow(`DL ÷ floor, ${int(w)} worker${w === 1 ? "" : "s"}`, (q) => at(q, w), "scaling")),
    ratioRow("open loop p99 DL ÷ floor", (q) => q.openLoopP99Ratio, ""),
    [
      "open loop p99 DL",
      (r) => cell(ok((ok(r.cases.openloop) as { dl?: Outcome<OpenLoop> })?.dl)?.latency.p99Ms, ms),
      "",
      none,
    ],
    ratioRow("hand-off DL ÷ RTT", (q) => q.handoffDlOverRtt, "handoffDlOverRtt"),
    ...perLock("heap", "heapKiBPerLock"),
    ...perLock("RSS", "rssKiBPerLock"),
    ["lag p99, mass held", (_, q) => cell(q.lagP99Ms, ms), "lagP99Ms", (q) => q.lagP99Ms],
    ["mass release", (_, q) => cell(q.massReleaseS, (x) => `${x.toFixed(2)} s`), "massReleaseS", (q) => q.massReleaseS],
    ["mass release errors", (_, q) => cell(q.massReleaseErrors, int), "massReleaseErrors", (q) => q.massReleaseErrors],
    ["mass losses", (_, q) => cell(q.massLosses, int), "massLosses", (q) => q.massLosses],
  ];
}

function cell(x: number | undefined, f: (x: number) => string): string {
  return x === undefined ? "n/a" : f(x);
}

/** The compact side-by-side table of all runtimes, with the targets. */
export function sideBySide(results: Record<string, RuntimeResult>): string[] {
  const names = Object.keys(results);
  const qs = Object.fromEntries(names.map((n) => [n, ratios(results[n] as RuntimeResult)]));
  const w0 = 34;
  const w = 18;
  const out = [`${"".padEnd(w0)}${names.map((n) => n.padStart(w)).join("")}   target`];
  for (const [label, get, key, value] of rows(results)) {
    const cells = names.map((n) => {
      const q = qs[n] as Ratios;
      const text = get(results[n] as RuntimeResult, q);
      return `${text}${key === "" ? "  " : tick(key, value(q))}`.padStart(w);
    });
    out.push(`${label.padEnd(w0)}${cells.join("")}   ${key === "" ? "" : TARGETS[key].text}`.trimEnd());
  }
  return out;
}
