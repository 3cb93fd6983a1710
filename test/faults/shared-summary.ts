/**
 * Figures of shared-connection trials (shared-trial.ts): per trial, and over
 * many. Lateness and "after the hang-up" are certain amounts (the clock
 * error already taken off); margins use the clock bounds' midpoint.
 */
import type { KeyResult, SharedRecord } from "./shared-trial.ts";
import { percentile } from "./summary.ts";

/** The figures for a group of trials (or one). */
export interface SharedSummary {
  readonly trials: number;
  /** Keys judged: on the shared connection. */
  readonly keys: number;
  readonly late: number;
  /** Trials with at least one key told late. */
  readonly lateTrials: number;
  /** Trials with at least one key told late, not fully told before its grant, or told after the hang-up. */
  readonly failedTrials: number;
  readonly lateMax: number | undefined;
  readonly notFullyTold: number;
  readonly afterHangUp: number;
  readonly afterHangUpMax: number | undefined;
  /** Keys whose waiter never got the lock, or that were never told. */
  readonly ungranted: number;
  readonly untold: number;
  readonly marginMin: number | undefined;
  readonly marginP50: number | undefined;
  /** Trials that failed to run (see their note), or whose holdings did not end lost and aborted. */
  readonly broken: number;
}

const defined = (xs: ReadonlyArray<number | undefined>): number[] => xs.filter((x): x is number => x !== undefined);
const earliest = (xs: ReadonlyArray<number | undefined>): number | undefined => percentile(defined(xs), 0);
const latest = (xs: ReadonlyArray<number | undefined>): number | undefined => percentile(defined(xs), 100);

/** Sum up `records`. */
export function summarizeShared(records: readonly SharedRecord[]): SharedSummary {
  const keys: KeyResult[] = records.flatMap((r) => r.keys);
  const margins = defined(keys.map((k) => k.marginMs));
  return {
    trials: records.length,
    keys: keys.length,
    late: keys.filter((k) => k.late).length,
    lateTrials: records.filter((r) => r.keys.some((k) => k.late)).length,
    failedTrials: records.filter((r) => r.keys.some((k) => k.late || k.notFullyTold || k.afterHangUp)).length,
    lateMax: percentile(defined(keys.map((k) => k.lateMs)), 100),
    notFullyTold: keys.filter((k) => k.notFullyTold).length,
    afterHangUp: keys.filter((k) => k.afterHangUp).length,
    afterHangUpMax: percentile(defined(keys.map((k) => k.afterHangUpMs)), 100),
    ungranted: keys.filter((k) => k.grantAt === undefined).length,
    untold: keys.filter((k) => k.toldAt === undefined).length,
    marginMin: percentile(margins, 0),
    marginP50: percentile(margins, 50),
    broken: records.filter((r) => r.note !== undefined || r.badState.length > 0).length,
  };
}

const ms = (x: number | undefined, digits = 2): string => (x === undefined ? "-" : `${x.toFixed(digits)} ms`);

/** One line for a summary. */
export function formatShared(label: string, s: SharedSummary): string {
  return (
    `${label}: trials ${s.trials} (failed ${s.failedTrials}), keys ${s.keys}; ` +
    `told late ${s.late} (in ${s.lateTrials} trials, max ${ms(s.lateMax)}); ` +
    `not fully told before the grant ${s.notFullyTold}; told after the client hung up ${s.afterHangUp} ` +
    `(max ${ms(s.afterHangUpMax)}); margin min ${ms(s.marginMin)}, median ${ms(s.marginP50)}; ` +
    `never granted ${s.ungranted}, never told ${s.untold}; broken trials ${s.broken}`
  );
}

/** One trial on a few lines: figures, then what went wrong, with times from the fault. */
export function describeShared(r: SharedRecord): string {
  const s = summarizeShared([r]);
  const base = r.faultAt ?? 0;
  const told = r.keys.map((k) => k.toldAt);
  const rel = (x: number | undefined): string => (x === undefined ? "-" : `@${(x - base).toFixed(2)}`);
  const lines = [
    `${formatShared(`trial ${r.tag}`, s)}`,
    `  ${r.sharedKeys} holdings on proxied connection ${r.sharedConn} of ${r.locks} locks; clock ±${ms(r.clockErrorMs, 3)}; ` +
      `times from the fault: client hung up ${rel(r.hungUpAt)}, told ${rel(earliest(told))}..${rel(latest(told))}, ` +
      `grants arrived ${rel(earliest(r.keys.map((k) => k.grantAt)))}..${rel(latest(r.keys.map((k) => k.grantAt)))}; other keys lost ${r.otherLost}`,
    `  told because: ${r.reasons.join(" | ") || "-"}`,
  ];
  if (r.note !== undefined) lines.push(`  NOTE: ${r.note}`);
  for (const b of r.badState.slice(0, 5)) lines.push(`  ${b}`);
  const late = r.keys.filter((k) => k.late).sort((a, b) => (b.lateMs ?? Infinity) - (a.lateMs ?? Infinity));
  for (const k of late.slice(0, 3)) {
    lines.push(
      `  LATE ${k.key}: grant arrived ${rel(k.grantAt)}, told ${rel(k.toldAt)} (${ms(k.lateMs)} after the grant, for certain)` +
        (k.missing.length > 0 ? `; never told by ${k.missing.join(", ")}` : ""),
    );
  }
  return lines.join("\n");
}
