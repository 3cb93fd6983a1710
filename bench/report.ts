/**
 * The printed report of `npm run bench` (bench/run.ts): per runtime, the
 * absolute numbers and the ratios that matter, each beside its target; then
 * the three runtimes side by side. Targets are information only: nothing here
 * decides an exit code.
 */

/** Result of a throughput case (see bench/worker.mjs). */
export interface Throughput {
  opsPerS: number;
  cpuUsPerOp: number;
  /** `round`: the round of bench/run.ts the window was measured in (absent from a worker's own result). */
  windows: { opsPerS: number; cpuUsPerOp: number; round?: number }[];
  workers: number;
  failedWorkers: number;
  errors?: { count: number; messages: string[] };
}

/** A latency sample summary, in microseconds. */
export interface Latency {
  n: number;
  p50Us: number;
  p90Us: number;
  unconfirmed?: number;
  /** For a hand-off: the RTT sampled just before each one, under the same conditions. */
  rtt?: Latency;
}

/** Result of the heap case. */
export interface Heap {
  asked: number;
  held: number;
  acquireS: number;
  gc: boolean;
  heapKiBPerLock: number;
  rssKiBPerLock: number;
  errors?: { count: number; messages: string[] };
}

/** A case's result, or why it has none. */
export type Outcome<T> = T | { error: string };

/** Everything measured on one runtime. */
export interface RuntimeResult {
  version?: string;
  cases: {
    raw?: Outcome<Throughput>;
    lowlevel?: Outcome<Throughput>;
    dl?: Outcome<Throughput>;
    "dl-withlock"?: Outcome<Throughput>;
    "dl-new"?: Outcome<Throughput>;
    latency?: Outcome<{ rtt: Outcome<Latency>; handoffRaw: Outcome<Latency>; handoffDl: Outcome<Latency> }>;
    heap?: Outcome<Heap>;
  };
}

/** The ratios the targets are about; `undefined` where a case failed. */
export interface Ratios {
  dlOverFloor?: number;
  dlWithLockOverFloor?: number;
  dlNewOverFloor?: number;
  lowOverFloor?: number;
  lowCpuOverRaw?: number;
  handoffRawOverRtt?: number;
  handoffDlOverRtt?: number;
  heapKiBPerLock?: number;
  rssKiBPerLock?: number;
}

function ok<T extends object>(x: Outcome<T> | undefined): T | undefined {
  return x === undefined || "error" in x ? undefined : x;
}

/** A usable throughput result: at least one window measured. */
function tp(x: Outcome<Throughput> | undefined): Throughput | undefined {
  const t = ok(x);
  return t !== undefined && Number.isFinite(t.opsPerS) && t.opsPerS > 0 ? t : undefined;
}

function lat(x: Outcome<Latency> | undefined): Latency | undefined {
  const l = ok(x);
  return l !== undefined && Number.isFinite(l.p50Us) ? l : undefined;
}

const div = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;

/** The RTT a hand-off is compared with: the one sampled beside it, else the back-to-back one. */
function pairedRtt(h: Outcome<Latency> | undefined, backToBack: Latency | undefined): number | undefined {
  return lat(ok(h)?.rtt)?.p50Us ?? backToBack?.p50Us;
}

/** The median of `xs` (NaN for none). */
export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * `a ÷ b` for a field of two throughput results: the median of the ratios of
 * windows from the same round where there are any, else the ratio of medians.
 */
function paired(
  a: Throughput | undefined,
  b: Throughput | undefined,
  field: "opsPerS" | "cpuUsPerOp",
): number | undefined {
  if (a === undefined || b === undefined) return undefined;
  const ratiosByRound: number[] = [];
  for (const wa of a.windows) {
    const wb = b.windows.find((w) => w.round !== undefined && w.round === wa.round);
    if (wb !== undefined && wb[field] > 0) ratiosByRound.push(wa[field] / wb[field]);
  }
  return ratiosByRound.length > 0 ? median(ratiosByRound) : div(a[field], b[field]);
}

/** Compute the target ratios of one runtime. */
export function ratios(r: RuntimeResult): Ratios {
  const raw = tp(r.cases.raw);
  const low = tp(r.cases.lowlevel);
  const l = ok(r.cases.latency);
  const rtt = lat(l?.rtt);
  const heap = ok(r.cases.heap);
  const heapOk = heap !== undefined && heap.held > 0;
  return {
    dlOverFloor: paired(tp(r.cases.dl), raw, "opsPerS"),
    dlWithLockOverFloor: paired(tp(r.cases["dl-withlock"]), raw, "opsPerS"),
    dlNewOverFloor: paired(tp(r.cases["dl-new"]), raw, "opsPerS"),
    lowOverFloor: paired(low, raw, "opsPerS"),
    lowCpuOverRaw: paired(low, raw, "cpuUsPerOp"),
    handoffRawOverRtt: div(lat(l?.handoffRaw)?.p50Us, pairedRtt(l?.handoffRaw, rtt)),
    handoffDlOverRtt: div(lat(l?.handoffDl)?.p50Us, pairedRtt(l?.handoffDl, rtt)),
    heapKiBPerLock: heapOk ? heap.heapKiBPerLock : undefined,
    rssKiBPerLock: heapOk ? heap.rssKiBPerLock : undefined,
  };
}

/** A target: the bound and which way it goes. */
interface Target {
  text: string;
  met(x: number): boolean;
}
const atLeast = (b: number, unit = "×"): Target => ({ text: `≥ ${b}${unit}`, met: (x) => x >= b });
const atMost = (b: number, unit = "×"): Target => ({ text: `≤ ${b}${unit}`, met: (x) => x <= b });

/** The targets, by ratio; the ones without a target are shown for comparison only. */
export const TARGETS: Partial<Record<keyof Ratios, Target>> = {
  dlOverFloor: atLeast(0.8),
  lowOverFloor: atLeast(0.95),
  lowCpuOverRaw: atMost(1.2),
  handoffDlOverRtt: atMost(2),
  heapKiBPerLock: atMost(2, " KiB"),
  rssKiBPerLock: atMost(8, " KiB"),
};

const int = (x: number): string => Math.round(x).toLocaleString("en-US");
const us = (x: number): string => `${x < 10 ? x.toFixed(2) : x.toFixed(1)} µs`;
/** Two decimals, or three where two would round onto the target's bound and hide which side it is on. */
function fixed(k: keyof Ratios, x: number): string {
  const t = TARGETS[k];
  const two = x.toFixed(2);
  return t !== undefined && t.met(Number(two)) !== t.met(x) ? x.toFixed(3) : two;
}
const fmtRatio = (k: keyof Ratios, x: number | undefined): string =>
  x === undefined ? "n/a" : k.endsWith("PerLock") ? `${fixed(k, x)} KiB` : `${fixed(k, x)}×`;
const mark = (k: keyof Ratios, x: number | undefined): string => {
  const t = TARGETS[k];
  if (t === undefined || x === undefined) return "";
  return `${t.met(x) ? "✓" : "✗"} target ${t.text}`;
};

/** Why a case has no numbers, or the warnings that go with them. */
function problems(x: { error: string } | { errors?: { count: number; messages: string[] } } | undefined): string {
  if (x === undefined) return "not run";
  if ("error" in x) return `FAILED: ${x.error}`;
  if (x.errors === undefined) return "";
  return `(${x.errors.count} error(s): ${x.errors.messages.join(" | ")})`;
}

function throughputLine(label: string, x: Outcome<Throughput> | undefined, extra = ""): string {
  const t = tp(x);
  const head = `  ${label.padEnd(26)}`;
  if (t === undefined) return `${head}${problems(x as Outcome<Throughput>) || "no complete window"}`;
  const spread = t.windows.map((w) => int(w.opsPerS)).join("/");
  const failed = t.failedWorkers > 0 ? ` [${t.failedWorkers}/${t.workers} workers failed]` : "";
  return `${head}${int(t.opsPerS).padStart(9)} ops/s  ${us(t.cpuUsPerOp).padStart(9)} CPU/op  (windows ${spread})${extra}${failed} ${problems(x as Outcome<Throughput>)}`.trimEnd();
}

function latencyLine(label: string, x: Outcome<Latency> | undefined, extra = ""): string {
  const l = lat(x);
  const head = `  ${label.padEnd(26)}`;
  if (l === undefined) return `${head}${x !== undefined && "error" in x ? `FAILED: ${x.error}` : "not run"}`;
  const unconfirmed = l.unconfirmed ? ` [${l.unconfirmed} rounds without a confirmed waiter]` : "";
  const beside = lat(l.rtt) === undefined ? "" : ` RTT beside it p50 ${us((l.rtt as Latency).p50Us)};`;
  return `${head}p50 ${us(l.p50Us).padStart(9)}  p90 ${us(l.p90Us).padStart(9)}  (n=${l.n})${beside}${extra}${unconfirmed}`;
}

const ratioText = (k: keyof Ratios, x: number | undefined, what: string): string =>
  x === undefined ? "" : `   ${fmtRatio(k, x)} ${what}  ${mark(k, x)}`.trimEnd();

/** The section of one runtime. */
export function runtimeSection(name: string, r: RuntimeResult): string[] {
  const q = ratios(r);
  const c = r.cases;
  const l = ok(c.latency);
  const heap = ok(c.heap);
  const lines = [`${name} ${r.version ?? ""}`.trimEnd()];
  lines.push(throughputLine("raw floor", c.raw));
  lines.push(
    throughputLine(
      "low-level",
      c.lowlevel,
      [ratioText("lowOverFloor", q.lowOverFloor, "floor"), ratioText("lowCpuOverRaw", q.lowCpuOverRaw, "raw CPU/op")]
        .filter((t) => t !== "")
        .join(";"),
    ),
  );
  lines.push(throughputLine("DistributedLock", c.dl, ratioText("dlOverFloor", q.dlOverFloor, "floor")));
  lines.push(
    throughputLine("DL withLock", c["dl-withlock"], ratioText("dlWithLockOverFloor", q.dlWithLockOverFloor, "floor")),
  );
  lines.push(throughputLine("DL new per op", c["dl-new"], ratioText("dlNewOverFloor", q.dlNewOverFloor, "floor")));
  if (c.latency !== undefined && "error" in c.latency)
    lines.push(`  ${"latency".padEnd(26)}FAILED: ${c.latency.error}`);
  else {
    lines.push(latencyLine("RTT raw, back to back", l?.rtt));
    lines.push(latencyLine("hand-off raw", l?.handoffRaw, ratioText("handoffRawOverRtt", q.handoffRawOverRtt, "RTT")));
    lines.push(
      latencyLine("hand-off DistributedLock", l?.handoffDl, ratioText("handoffDlOverRtt", q.handoffDlOverRtt, "RTT")),
    );
  }
  const head = `  ${"per held lock".padEnd(26)}`;
  if (heap === undefined) lines.push(`${head}${problems(c.heap)}`);
  else
    lines.push(
      `${head}heap ${fmtRatio("heapKiBPerLock", q.heapKiBPerLock)} ${mark("heapKiBPerLock", q.heapKiBPerLock)};  RSS ${fmtRatio("rssKiBPerLock", q.rssKiBPerLock)} ${mark("rssKiBPerLock", q.rssKiBPerLock)}  (${heap.held}/${heap.asked} held, acquired in ${heap.acquireS.toFixed(1)} s${heap.gc ? "" : ", NO forced GC"}) ${problems(heap)}`.trimEnd(),
    );
  return lines;
}

/** Rows of the side-by-side table: label, and how to get the cell of a runtime. */
const ROWS: [string, (r: RuntimeResult, q: Ratios) => string, string][] = [
  ["raw floor ops/s", (r) => cell(tp(r.cases.raw)?.opsPerS, int), ""],
  ["raw floor CPU/op", (r) => cell(tp(r.cases.raw)?.cpuUsPerOp, us), ""],
  ["low-level ops/s", (r) => cell(tp(r.cases.lowlevel)?.opsPerS, int), ""],
  ["DistributedLock ops/s", (r) => cell(tp(r.cases.dl)?.opsPerS, int), ""],
  ["low-level ÷ floor", (_, q) => cell(q.lowOverFloor, (x) => fmtRatio("lowOverFloor", x)), "lowOverFloor"],
  ["low-level CPU ÷ raw CPU", (_, q) => cell(q.lowCpuOverRaw, (x) => fmtRatio("lowCpuOverRaw", x)), "lowCpuOverRaw"],
  ["DistributedLock ÷ floor", (_, q) => cell(q.dlOverFloor, (x) => fmtRatio("dlOverFloor", x)), "dlOverFloor"],
  ["DL withLock ÷ floor", (_, q) => cell(q.dlWithLockOverFloor, (x) => fmtRatio("dlOverFloor", x)), ""],
  ["DL new per op ÷ floor", (_, q) => cell(q.dlNewOverFloor, (x) => fmtRatio("dlOverFloor", x)), ""],
  ["RTT p50, back to back", (r) => cell(lat(ok(r.cases.latency)?.rtt)?.p50Us, us), ""],
  ["RTT p50, beside hand-off", (r) => cell(lat(ok(ok(r.cases.latency)?.handoffDl)?.rtt)?.p50Us, us), ""],
  ["hand-off DL p50", (r) => cell(lat(ok(r.cases.latency)?.handoffDl)?.p50Us, us), ""],
  ["hand-off raw ÷ RTT", (_, q) => cell(q.handoffRawOverRtt, (x) => fmtRatio("handoffRawOverRtt", x)), ""],
  ["hand-off DL ÷ RTT", (_, q) => cell(q.handoffDlOverRtt, (x) => fmtRatio("handoffDlOverRtt", x)), "handoffDlOverRtt"],
  ["heap per held lock", (_, q) => cell(q.heapKiBPerLock, (x) => fmtRatio("heapKiBPerLock", x)), "heapKiBPerLock"],
  ["RSS per held lock", (_, q) => cell(q.rssKiBPerLock, (x) => fmtRatio("rssKiBPerLock", x)), "rssKiBPerLock"],
];

function cell(x: number | undefined, f: (x: number) => string): string {
  return x === undefined ? "n/a" : f(x);
}

/** The compact side-by-side table of all runtimes, with the targets. */
export function sideBySide(results: Record<string, RuntimeResult>): string[] {
  const names = Object.keys(results);
  const qs = Object.fromEntries(names.map((n) => [n, ratios(results[n] as RuntimeResult)]));
  const w0 = 25;
  const w = 13;
  const out = [`${"".padEnd(w0)}${names.map((n) => n.padStart(w)).join("")}   target`];
  for (const [label, get, key] of ROWS) {
    const cells = names.map((n) => {
      const q = qs[n] as Ratios;
      const text = get(results[n] as RuntimeResult, q);
      const t = key === "" ? undefined : TARGETS[key as keyof Ratios];
      const x = key === "" ? undefined : q[key as keyof Ratios];
      const m = t === undefined || x === undefined ? "  " : t.met(x) ? " ✓" : " ✗";
      return `${text}${m}`.padStart(w);
    });
    const target = key === "" ? "" : (TARGETS[key as keyof Ratios]?.text ?? "");
    out.push(`${label.padEnd(w0)}${cells.join("")}   ${target}`.trimEnd());
  }
  return out;
}
