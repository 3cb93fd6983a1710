/**
 * Figures over many trials: how many overlapped for certain, how many may
 * have, and the safety margins (see trial.ts for their definitions).
 */
import type { TrialRecord } from "./trial.ts";

/** The figures for one group of trials. */
export interface Summary {
  readonly label: string;
  readonly trials: number;
  /** The holder acquired and the contender then got the lock: the trials that test something. */
  readonly decided: number;
  readonly safe: number;
  readonly possible: number;
  /** Possible overlaps where the holder had hung up (so the grant may simply have followed its close). */
  readonly possibleAfterHangUp: number;
  readonly overlaps: number;
  readonly heldToEnd: number;
  /** The holder's acquire refused a grant it could not prove (LockLostError). */
  readonly refused: number;
  readonly inconclusive: number;
  /** `earliestGrant - notice` over decided trials with a notice (ms). */
  readonly marginMin: number | undefined;
  readonly marginP50: number | undefined;
  /** `grantArrival - notice` (ms). */
  readonly arrivalMarginMin: number | undefined;
  /** Certain double holding in the OVERLAP trials (ms). */
  readonly overlapMax: number | undefined;
  readonly overlapP50: number | undefined;
}

/** The p-th percentile (0..100, nearest rank) of `xs`, or `undefined` if empty. */
export function percentile(xs: readonly number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  const sorted = [...xs].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function defined(xs: ReadonlyArray<number | undefined>): number[] {
  return xs.filter((x): x is number => x !== undefined);
}

/** Summarise `records` under `label`. */
export function summarize(label: string, records: readonly TrialRecord[]): Summary {
  const count = (v: TrialRecord["verdict"]): number => records.filter((r) => r.verdict === v).length;
  const margins = defined(records.map((r) => r.marginMs));
  const overlaps = defined(records.filter((r) => r.verdict === "OVERLAP").map((r) => r.overlapMs));
  return {
    label,
    trials: records.length,
    decided: records.filter((r) => r.contenderArrivedAt !== undefined).length,
    safe: count("safe"),
    possible: count("possible-overlap"),
    possibleAfterHangUp: records.filter(
      (r) =>
        r.verdict === "possible-overlap" &&
        r.holderHungUpAt !== undefined &&
        r.contenderArrivedAt !== undefined &&
        r.holderHungUpAt < r.contenderArrivedAt,
    ).length,
    overlaps: count("OVERLAP"),
    heldToEnd: count("held-to-end"),
    refused: count("refused"),
    inconclusive: count("inconclusive"),
    marginMin: percentile(margins, 0),
    marginP50: percentile(margins, 50),
    arrivalMarginMin: percentile(defined(records.map((r) => r.arrivalMarginMs)), 0),
    overlapMax: percentile(overlaps, 100),
    overlapP50: percentile(overlaps, 50),
  };
}

const ms = (x: number | undefined): string => (x === undefined ? "-" : `${x.toFixed(1)} ms`);

/** One line per summary, for console.log. */
export function formatSummary(s: Summary): string {
  return (
    `${s.label}: trials ${s.trials}, decided ${s.decided}, overlaps ${s.overlaps}, ` +
    `possible overlaps ${s.possible} (${s.possibleAfterHangUp} after the holder hung up), safe ${s.safe}, ` +
    `held-to-end ${s.heldToEnd}, refused ${s.refused}, inconclusive ${s.inconclusive}; ` +
    `margin min ${ms(s.marginMin)}, p50 ${ms(s.marginP50)}; arrival margin min ${ms(s.arrivalMarginMin)}` +
    (s.overlaps > 0 ? `; double holding max ${ms(s.overlapMax)}, p50 ${ms(s.overlapP50)}` : "")
  );
}

/** One trial on one line, times relative to the holder's acquire (ms). */
export function describeTrial(r: TrialRecord): string {
  const base = r.holderAcquiredAt ?? r.startedAt;
  const t = (x: number | undefined): string => (x === undefined ? "-" : (x - base).toFixed(1));
  const parts = [
    `${r.verdict} ${r.scenario}/${r.mode} lease ${r.leaseS}s`,
    r.grantDelayMs === undefined ? undefined : `grant delayed ${r.grantDelayMs} ms`,
    r.grantLeftServerAt === undefined ? undefined : `grant left the server @${t(r.grantLeftServerAt)}`,
    r.faultAt === undefined ? undefined : `fault @${t(r.faultAt)}`,
    r.restartedAt === undefined ? undefined : `restarted @${t(r.restartedAt)}`,
    `contender sent @${t(r.contenderSentAt)} earliest grant @${t(r.earliestGrantAt)} arrived @${t(r.contenderArrivedAt)}`,
    `notice @${t(r.noticeAt)}${r.noticeHow === undefined ? "" : ` (${r.noticeHow})`}`,
    r.holderHungUpAt === undefined ? undefined : `holder hung up @${t(r.holderHungUpAt)}`,
    r.marginMs === undefined ? undefined : `margin ${r.marginMs.toFixed(1)} ms`,
    r.overlapMs === undefined ? undefined : `double holding ${r.overlapMs.toFixed(1)} ms`,
    r.note,
  ];
  return parts.filter((p) => p !== undefined).join("; ");
}
