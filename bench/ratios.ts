/**
 * What `npm run bench` measured, as types, and the ratios taken from it
 * (bench/report.ts prints them; `--json` includes them). Every ratio to a
 * floor is taken within one run, from slices that took turns in one process
 * (bench/throughput.mjs): the ops of the case's slices over those of the
 * floor's slices of the same turns, summed over every process that ran both.
 * Node has two floors (reading through 'data' events, and through
 * `onread`); its ratios are taken against whichever was faster (the higher
 * median ops/s), at each worker count.
 */

/** One slice of a throughput case (bench/throughput.mjs). */
export interface Slice {
  ops: number;
  seconds: number;
  /** The process's CPU time during the slice (user + system, every thread). */
  cpuUs: number;
  opsPerS: number;
  /** `null` for a slice without a completed operation. */
  cpuUsPerOp: number | null;
  /** The cycle of turns it was measured in. */
  slice: number;
  /** The process it was measured in (bench/run.ts numbers them; absent from a worker's own result). */
  round?: number;
  /** Another case still had operations in flight when it began: left out of the ratios. */
  overlap?: boolean;
}

/** Result of a closed-loop throughput case (see bench/throughput.mjs). */
export interface Throughput {
  opsPerS: number;
  cpuUsPerOp: number;
  /** Every slice it ran, in every process. */
  windows: Slice[];
  workers: number;
  failedWorkers: number;
  /** Slices left out of the ratios (see `Slice.overlap`). */
  overlaps?: number;
  errors?: { count: number; messages: string[] } | undefined;
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

/** p50/p99/max of a sample, in milliseconds. */
export interface MsSummary {
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Result of the open-loop case (bench/openloop.mjs). */
export interface OpenLoop {
  via: string;
  rate: number;
  achievedPerS: number;
  latency: MsSummary;
  service: MsSummary;
  maxBacklog: number;
  unfinished: number;
  errors?: { count: number; messages: string[] } | undefined;
}

/** Heap and RSS per held lock at one count (bench/mass.mjs). */
export interface Checkpoint {
  asked: number;
  held: number;
  heapKiBPerLock: number;
  rssKiBPerLock: number;
}

/** Result of the mass case (bench/mass.mjs). */
export interface Mass {
  asked: number;
  held: number;
  stillHeld: number;
  leaseTtlS: number;
  gc: boolean;
  checkpoints: Checkpoint[];
  acquireS: number;
  lagIdle: MsSummary;
  lagHeld: MsSummary;
  lagS: number;
  sample: { renewed: number; lost: number; locks: number; renewedInWindow: number };
  releaseS: number;
  releaseErrors?: { count: number; messages: string[] };
  lost: { acquire: number; hold: number; release: number; foundByRelease: number };
  losses: number;
  warmError?: string | undefined;
  errors?: { count: number; messages: string[] } | undefined;
}

/** A case's result, or why it has none. */
export type Outcome<T> = T | { error: string };

/** The closed-loop cases at 50 workers. */
export type ThroughputCase =
  | "raw"
  | "raw-onread"
  | "lowlevel"
  | "dl"
  | "dl-withlock"
  | "dl-new"
  | "client"
  | "client-withlock";

/** Everything measured on one runtime. */
export interface RuntimeResult {
  version?: string;
  cases: Partial<Record<ThroughputCase, Outcome<Throughput>>> & {
    latency?: Outcome<{ rtt: Outcome<Latency>; handoffRaw: Outcome<Latency>; handoffDl: Outcome<Latency> }>;
    /** Open loop: through the floor (the stronger one, on Node) and through DistributedLock. */
    openloop?: { floor?: Outcome<OpenLoop>; dl?: Outcome<OpenLoop> } | { error: string };
    mass?: Outcome<Mass>;
  };
  /** Scaling rounds: by worker count, then by case ("raw", "raw-onread", "dl"). */
  scaling?: Record<string, Partial<Record<ThroughputCase, Outcome<Throughput>>>>;
}

/** DistributedLock ÷ floor at one worker count. */
export interface ScalePoint {
  workers: number;
  floor: ThroughputCase;
  floorOpsPerS?: number | undefined;
  dlOpsPerS?: number | undefined;
  ratio?: number | undefined;
  /** The lowest and highest ratio of a single round (process). */
  spread?: Paired | undefined;
}

/** The throughput ratios that carry a spread between rounds. */
export type SpreadKey =
  | "dlOverFloor"
  | "dlWithLockOverFloor"
  | "dlNewOverFloor"
  | "clientOverFloor"
  | "clientWithLockOverFloor"
  | "lowOverData"
  | "lowOverOnread"
  | "lowCpuOverRaw"
  | "lowCpuOverOnread"
  | "onreadOverData";

/** The ratios the targets are about; `undefined` where a case failed. */
export interface Ratios {
  /** The floor the 50-worker ratios are taken against ("raw", or Node's faster of "raw" and "raw-onread"). */
  floor: ThroughputCase;
  dlOverFloor?: number | undefined;
  dlWithLockOverFloor?: number | undefined;
  dlNewOverFloor?: number | undefined;
  clientOverFloor?: number | undefined;
  clientWithLockOverFloor?: number | undefined;
  /**
   * Low-level ÷ the floor that reads through 'data' events on Node (the one
   * floor of Bun and Deno): the floor the low-level targets were set against
   * (issue 9), before Node's `onread` floor existed.
   */
  lowOverData?: number | undefined;
  /** Node only: low-level ÷ the `onread` floor. */
  lowOverOnread?: number | undefined;
  /** Low-level CPU per op ÷ that of the floor of `lowOverData`. */
  lowCpuOverRaw?: number | undefined;
  /** Node only: low-level CPU per op ÷ that of the `onread` floor. */
  lowCpuOverOnread?: number | undefined;
  onreadOverData?: number | undefined;
  handoffRawOverRtt?: number | undefined;
  handoffDlOverRtt?: number | undefined;
  scaling: ScalePoint[];
  openLoopP99Ratio?: number | undefined;
  openLoopP50Ratio?: number | undefined;
  massReleaseS?: number | undefined;
  massReleaseErrors?: number | undefined;
  massLosses?: number | undefined;
  lagP99Ms?: number | undefined;
  heapKiBPerLock: (number | undefined)[];
  rssKiBPerLock: (number | undefined)[];
  /** The lowest and highest ratio of a single round, for the throughput ratios. */
  spreads: Partial<Record<SpreadKey, Paired>>;
}

export function ok<T extends object>(x: Outcome<T> | undefined): T | undefined {
  return x === undefined || "error" in x ? undefined : x;
}

/** A usable throughput result: at least one slice measured (a case that stalled in most of them included). */
export function tp(x: Outcome<Throughput> | undefined): Throughput | undefined {
  const t = ok(x);
  return t !== undefined && t.windows.length > 0 ? t : undefined;
}

export function lat(x: Outcome<Latency> | undefined): Latency | undefined {
  const l = ok(x);
  return l !== undefined && Number.isFinite(l.p50Us) ? l : undefined;
}

const div = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? undefined : a / b;

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

/** A ratio of two throughput results, with the lowest and highest of its processes' own ratios. */
export interface Paired {
  ratio: number;
  lo: number;
  hi: number;
}

/**
 * `a ÷ b` for a field of two throughput results, from the slices of the same
 * process and cycle of turns: summed over all of them (ops over seconds, CPU
 * over ops), so a slice disturbed by the machine weighs no more than its share
 * of time, and a slice in which nothing completed counts as the stall it was.
 * Slices marked `overlap` are left out. `lo`/`hi` are the ratios of single
 * processes: the spread between rounds.
 */
function paired(
  a: Throughput | undefined,
  b: Throughput | undefined,
  field: "opsPerS" | "cpuUsPerOp",
): Paired | undefined {
  if (a === undefined || b === undefined) return undefined;
  const ga = groups(a);
  const gb = groups(b);
  const total = new Sums(field);
  const byRound = new Map<number | undefined, Sums>();
  for (const [key, sa] of ga) {
    const sb = gb.get(key);
    if (sb === undefined) continue;
    total.add(sa, sb);
    const r = byRound.get(sa.round) ?? new Sums(field);
    byRound.set(sa.round, r);
    r.add(sa, sb);
  }
  const ratio = total.ratio();
  if (ratio === undefined) return undefined;
  const rounds = [...byRound.values()].map((r) => r.ratio()).filter((x) => x !== undefined);
  if (rounds.length === 0) return { ratio, lo: ratio, hi: ratio };
  return { ratio, lo: Math.min(...rounds), hi: Math.max(...rounds) };
}

/** Totals of a case's slices in one process and cycle. */
interface Group {
  round: number | undefined;
  ops: number;
  seconds: number;
  cpuUs: number;
}

function groups(t: Throughput): Map<string, Group> {
  const out = new Map<string, Group>();
  for (const w of t.windows) {
    if (w.overlap) continue;
    const key = `${w.round}:${w.slice}`;
    const g = out.get(key) ?? { round: w.round, ops: 0, seconds: 0, cpuUs: 0 };
    out.set(key, g);
    g.ops += w.ops;
    g.seconds += w.seconds;
    g.cpuUs += w.cpuUs;
  }
  return out;
}

/** Sums of paired groups: a rate is ops over seconds; CPU per op, CPU over ops. */
class Sums {
  #a = 0;
  #b = 0;
  #wa = 0;
  #wb = 0;
  constructor(readonly field: "opsPerS" | "cpuUsPerOp") {}

  add(a: Group, b: Group): void {
    const cpu = this.field === "cpuUsPerOp";
    this.#a += cpu ? a.cpuUs : a.ops;
    this.#b += cpu ? b.cpuUs : b.ops;
    this.#wa += cpu ? a.ops : a.seconds;
    this.#wb += cpu ? b.ops : b.seconds;
  }

  ratio(): number | undefined {
    return this.#wa > 0 && this.#wb > 0 && this.#b > 0 ? this.#a / this.#wa / (this.#b / this.#wb) : undefined;
  }
}

/** The faster floor of a set of cases: "raw-onread" where it beat "raw", else "raw". */
export function strongerFloor(cases: Partial<Record<ThroughputCase, Outcome<Throughput>>> | undefined): ThroughputCase {
  const data = tp(cases?.raw)?.opsPerS;
  const onread = tp(cases?.["raw-onread"])?.opsPerS;
  return onread !== undefined && (data === undefined || onread > data) ? "raw-onread" : "raw";
}

/** Compute the target ratios of one runtime. */
export function ratios(r: RuntimeResult): Ratios {
  const c = r.cases;
  const floorCase = strongerFloor(c);
  const floor = tp(c[floorCase]);
  const low = tp(c.lowlevel);
  const l = ok(c.latency);
  const rtt = lat(l?.rtt);
  const open = c.openloop === undefined || "error" in c.openloop ? undefined : c.openloop;
  const openFloor = ok(open?.floor)?.latency;
  const openDl = ok(open?.dl)?.latency;
  const mass = ok(c.mass);
  const massOk = mass !== undefined && mass.held > 0;
  const scaling = Object.entries(r.scaling ?? {})
    .map(([w, cases]) => {
      const f = strongerFloor(cases);
      const fl = tp(cases[f]);
      const dl = tp(cases.dl);
      const spread = paired(dl, fl, "opsPerS");
      return {
        workers: Number(w),
        floor: f,
        floorOpsPerS: fl?.opsPerS,
        dlOpsPerS: dl?.opsPerS,
        ratio: spread?.ratio,
        spread,
      };
    })
    .sort((a, b) => a.workers - b.workers);
  const perLock = (k: "heapKiBPerLock" | "rssKiBPerLock") =>
    (mass?.checkpoints ?? []).map((p) => (p.held > 0 ? p[k] : undefined));
  const spreads: Ratios["spreads"] = {};
  const pair = (
    k: SpreadKey,
    a: Throughput | undefined,
    b: Throughput | undefined,
    field: "opsPerS" | "cpuUsPerOp" = "opsPerS",
  ): number | undefined => {
    const p = paired(a, b, field);
    if (p !== undefined) spreads[k] = p;
    return p?.ratio;
  };
  return {
    floor: floorCase,
    dlOverFloor: pair("dlOverFloor", tp(c.dl), floor),
    dlWithLockOverFloor: pair("dlWithLockOverFloor", tp(c["dl-withlock"]), floor),
    dlNewOverFloor: pair("dlNewOverFloor", tp(c["dl-new"]), floor),
    clientOverFloor: pair("clientOverFloor", tp(c.client), floor),
    clientWithLockOverFloor: pair("clientWithLockOverFloor", tp(c["client-withlock"]), floor),
    lowOverData: pair("lowOverData", low, tp(c.raw)),
    lowOverOnread: pair("lowOverOnread", low, tp(c["raw-onread"])),
    lowCpuOverRaw: pair("lowCpuOverRaw", low, tp(c.raw), "cpuUsPerOp"),
    lowCpuOverOnread: pair("lowCpuOverOnread", low, tp(c["raw-onread"]), "cpuUsPerOp"),
    onreadOverData: pair("onreadOverData", tp(c["raw-onread"]), tp(c.raw)),
    handoffRawOverRtt: div(lat(l?.handoffRaw)?.p50Us, pairedRtt(l?.handoffRaw, rtt)),
    handoffDlOverRtt: div(lat(l?.handoffDl)?.p50Us, pairedRtt(l?.handoffDl, rtt)),
    scaling,
    openLoopP99Ratio: div(openDl?.p99Ms, openFloor?.p99Ms),
    openLoopP50Ratio: div(openDl?.p50Ms, openFloor?.p50Ms),
    massReleaseS: massOk ? mass.releaseS : undefined,
    massReleaseErrors: massOk ? (mass.releaseErrors?.count ?? 0) : undefined,
    massLosses: massOk ? mass.losses : undefined,
    lagP99Ms: massOk ? mass.lagHeld.p99Ms : undefined,
    heapKiBPerLock: perLock("heapKiBPerLock"),
    rssKiBPerLock: perLock("rssKiBPerLock"),
    spreads,
  };
}
