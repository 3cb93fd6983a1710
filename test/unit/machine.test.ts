/**
 * The lock's transition table (src/machine.ts) against a reference model
 * written here from the rules, not from the table: which events are the
 * user's, which phases hold, where each event leads, and which actions
 * follow from what a transition does (starts or ends a generation, loses a
 * holding, keeps renewing). A property test walks random event sequences
 * from `released` through both and checks, step by step, that they agree and
 * that the safety rules hold: I1 (tell before leaving), I3 (no loss for what
 * the user ended) and no regression. Plain tests cover step(), publicState(),
 * isHolding() and mermaid().
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Action,
  type Event,
  isHolding,
  mermaid,
  type Phase,
  publicState,
  step,
  TABLE,
  type Transition,
} from "../../src/machine.ts";

// Listed through a record so that a phase or event added to the types, and not here, fails to compile.
const PHASES = Object.keys({
  released: 0,
  connecting: 0,
  queued: 0,
  confirming: 0,
  held: 0,
  renewing: 0,
  releasing: 0,
  lost: 0,
} satisfies Record<Phase, 0>) as Phase[];
const EVENTS = Object.keys({
  start: 0,
  queue: 0,
  grant: 0,
  grantLate: 0,
  confirmed: 0,
  renewDue: 0,
  renewed: 0,
  timedOut: 0,
  refused: 0,
  failed: 0,
  release: 0,
  releaseDone: 0,
  gone: 0,
  notLeader: 0,
  replyLate: 0,
  closed: 0,
  deadline: 0,
  maxHold: 0,
  close: 0,
  abort: 0,
} satisfies Record<Event, 0>) as Event[];

// ---- The reference model: rules as predicates ----

/** Events the user causes; everything else comes from the server, the network or the clock. */
const byUser = (e: Event): boolean => e === "start" || e === "release" || e === "close" || e === "abort";
/** Phases in which the caller relies on the lock. */
const holds = (p: Phase): boolean => p === "held" || p === "renewing";
/** Phases of an attempt that has not handed anything over yet. */
const attempting = (p: Phase): boolean => p === "connecting" || p === "queued" || p === "confirming";
/** Phases with nothing in progress: a generation has ended (or none began). */
const idle = (p: Phase): boolean => p === "released" || p === "lost";
/** Phases that have a connection to leave. */
const active = (p: Phase): boolean => !idle(p);

/** Where `e` leads from `p`, or `undefined` when it does not apply there. */
function destination(p: Phase, e: Event): Phase | undefined {
  switch (e) {
    case "start":
      return idle(p) ? "connecting" : undefined;
    case "queue":
      return p === "connecting" ? "queued" : undefined;
    case "grant":
      return p === "connecting" || p === "queued" ? "held" : undefined;
    case "grantLate":
      return p === "connecting" || p === "queued" ? "confirming" : undefined;
    case "confirmed":
      return p === "confirming" ? "held" : undefined;
    case "renewDue":
      return p === "held" ? "renewing" : undefined;
    case "renewed":
      // A renewal moves a holding back to held; it changes nothing else's phase.
      if (p === "renewing") return "held";
      return p === "confirming" || p === "releasing" ? p : undefined;
    case "timedOut":
      return p === "connecting" || p === "queued" ? "released" : undefined;
    case "refused":
    case "failed":
    case "abort":
      return attempting(p) ? "released" : undefined;
    case "release":
      if (holds(p)) return "releasing";
      return attempting(p) || p === "lost" ? "released" : undefined;
    case "releaseDone":
      return p === "releasing" ? "released" : undefined;
    case "gone":
    case "replyLate":
    case "deadline":
      // Replies and the clock concern a holding, a grant being confirmed, or a release.
      if (holds(p)) return "lost";
      return p === "confirming" || p === "releasing" ? "released" : undefined;
    case "notLeader":
      // A follower's refusal proves nothing: a holding keeps renewing (the deadline decides); the
      // request of an attempt or a release ends it, without a loss.
      if (p === "renewing") return "held";
      return attempting(p) || p === "releasing" ? "released" : undefined;
    case "maxHold":
      // The holding's own time limit: only a holding has one (a release in flight has taken over).
      return holds(p) ? "lost" : undefined;
    case "closed":
      if (holds(p)) return "lost";
      return active(p) ? "released" : undefined;
    case "close":
      return p === "released" ? undefined : "released";
  }
}

/** How an ending leaves its connection: known state, abandoned, or untrusted. */
function leaving(p: Phase, e: Event): Action {
  if (e === "replyLate" || e === "closed") return "leaveBroken";
  // The clock proves nothing about the connection: what was held there is given up, the others stay.
  if (e === "deadline" || e === "maxHold") return "leaveDrop";
  if (e === "releaseDone" || e === "gone" || e === "refused") return "leaveClean";
  // A follower's answer: only before anything was asked is nothing left on the connection.
  if (e === "notLeader") return p === "connecting" ? "leaveClean" : "leaveDrop";
  // A `timeout` answer to a blocking acquire leaves nothing behind; a queue place must be abandoned.
  if (e === "timedOut") return p === "connecting" ? "leaveClean" : "leaveDrop";
  return "leaveDrop";
}

/** The actions of the move `p` → `to` on `e`, derived from what the move does. */
function actionsOf(p: Phase, e: Event, to: Phase): Action[] {
  if (active(p) && idle(to)) {
    // A generation ends: bump the epoch, stop renewing, tell (a loss the holder did not cause) or end, leave.
    const lose = holds(p) && !byUser(e);
    return ["epoch", "disarm", lose ? "tell" : "end", leaving(p, e)];
  }
  if (idle(p)) return e === "start" ? ["epoch"] : [];
  if (to === "held" && e === "grant") return ["epoch", "arm", "handOver"];
  if (to === "held" && e === "confirmed") return ["arm", "handOver"];
  if (to === "confirming") return e === "grantLate" ? ["epoch", "renew"] : ["renew"];
  if (to === "renewing") return ["renew"];
  if (to === "held") return ["arm"];
  if (to === "releasing") return p === "releasing" ? [] : ["arm", "sendRelease"];
  return [];
}

function model(p: Phase, e: Event): { to: Phase; actions: Action[] } | undefined {
  const to = destination(p, e);
  return to === undefined ? undefined : { to, actions: actionsOf(p, e, to) };
}

// ---- Checks on one transition ----

const LEAVES: readonly Action[] = ["leaveClean", "leaveDrop", "leaveBroken"];

/** The ways `t`'s action list is malformed (empty when it is well-formed). */
function malformed(t: Transition): string[] {
  const a = t.actions;
  const bad: string[] = [];
  const count = (x: Action): number => a.filter((y) => y === x).length;
  const at = (x: Action): number => a.indexOf(x);
  if (new Set(a).size !== a.length) bad.push("an action twice");
  const leaves = a.filter((x) => LEAVES.includes(x));
  if (leaves.length > 1) bad.push("two leave actions");
  if (leaves.length === 1 && !LEAVES.includes(a[a.length - 1] as Action)) bad.push("leave* not last");
  if (count("epoch") === 1 && at("epoch") !== 0) bad.push("epoch not first");
  if (count("tell") + count("end") > 1) bad.push("both tell and end");
  const ends = active(t.from) && idle(t.to);
  if (ends !== (leaves.length === 1)) bad.push("leave* without ending a generation, or an ending without leave*");
  if (ends && !(a.includes("epoch") && a.includes("disarm"))) bad.push("an ending without epoch and disarm");
  if (ends && count("tell") + count("end") !== 1) bad.push("an ending that neither tells nor ends");
  if (a.includes("disarm") && (!ends || at("disarm") > Math.max(at("tell"), at("end")))) {
    bad.push("disarm outside an ending, or after tell/end");
  }
  if (a.includes("tell") !== (t.to === "lost" && active(t.from))) bad.push("tell without a loss, or a loss untold");
  if (a.includes("handOver") && (t.to !== "held" || at("arm") < 0 || at("arm") > at("handOver"))) {
    bad.push("handOver outside an armed move to held");
  }
  if (a.includes("sendRelease") && t.to !== "releasing") bad.push("sendRelease outside releasing");
  if (a.includes("renew") && t.to !== "renewing" && t.to !== "confirming")
    bad.push("renew outside renewing/confirming");
  if (a.includes("arm") && t.to !== "held" && t.to !== "releasing") bad.push("arm outside held/releasing");
  return bad;
}

/** I1 and I3 for one transition: the reasons it breaks them. */
function unsafe(t: Transition): string[] {
  const bad: string[] = [];
  const tell = t.actions.indexOf("tell");
  if (tell >= 0) {
    for (const [i, x] of t.actions.entries()) if (LEAVES.includes(x) && i < tell) bad.push(`I1: ${x} before tell`);
    if (byUser(t.on)) bad.push("I3: tell on a user's event");
    if (!holds(t.from)) bad.push("I3: tell from a phase that does not hold");
  }
  if (holds(t.from) && t.to === "lost" && !byUser(t.on) && tell < 0) bad.push("I1: a loss without tell");
  // A holding ended by anything but the user is a loss: never a quiet release.
  if (holds(t.from) && idle(t.to) && !byUser(t.on) && t.to !== "lost") bad.push("I1: a holding ended quietly");
  if (t.to === "lost" && !holds(t.from)) bad.push("lost entered from a phase that does not hold");
  return bad;
}

/** Phases in the order a generation goes through them (released is where it ends); only `start` goes back. */
const RANK: Record<Phase, number> = {
  connecting: 1,
  queued: 2,
  confirming: 3,
  held: 4,
  renewing: 4,
  releasing: 5,
  lost: 6,
  released: 7,
};
const regresses = (t: Transition): boolean => t.on !== "start" && RANK[t.to] < RANK[t.from];

/**
 * One step of a walk: mostly an event the model says applies in the current
 * phase (so that walks get deep), sometimes any event at all (a late callback).
 */
const move = fc.record({ pick: fc.nat(), wild: fc.integer({ min: 0, max: 4 }) });

function eventOf(phase: Phase, m: { pick: number; wild: number }): Event {
  const applicable = EVENTS.filter((e) => destination(phase, e) !== undefined);
  const from = m.wild === 0 || applicable.length === 0 ? EVENTS : applicable;
  return from[m.pick % from.length] as Event;
}

/** Walk `moves` from released through the table and the model; returns what went wrong, step by step. */
function walk(moves: ReadonlyArray<{ pick: number; wild: number }>, taken: Set<Transition>): string[] {
  const problems: string[] = [];
  let phase: Phase = "released";
  // Since the last time nothing was in progress: was there a start, and a holding?
  let started = false;
  let heldSince = false;
  for (const mv of moves) {
    const e = eventOf(phase, mv);
    const t = step(phase, e);
    const m = model(phase, e);
    const at = `${phase} on ${e}`;
    if (t === undefined || m === undefined) {
      if (t !== m) problems.push(`${at}: table ${t?.to ?? "ignores it"}, model ${m?.to ?? "ignores it"}`);
      continue;
    }
    taken.add(t);
    if (t.to !== m.to || t.actions.join() !== m.actions.join()) {
      problems.push(`${at}: table -> ${t.to} [${t.actions}], model -> ${m.to} [${m.actions}]`);
    }
    if (t.from !== phase || t.on !== e) problems.push(`${at}: the row says ${t.from} on ${t.on}`);
    for (const p of [...malformed(t), ...unsafe(t)]) problems.push(`${at}: ${p}`);
    if (regresses(t)) problems.push(`${at}: goes back to ${t.to}`);
    if (e === "start") {
      started = true;
      heldSince = false;
    }
    // Holding again only through an attempt that a start began, never straight from lost or released.
    if (holds(t.to) && !holds(phase)) {
      if (!attempting(phase) || !started) problems.push(`${at}: holds without a started attempt`);
      heldSince = true;
    }
    if (t.to === "lost" && !heldSince) problems.push(`${at}: lost what it never held`);
    if (idle(t.to)) started = false;
    phase = t.to;
  }
  return problems;
}

describe("property: random event sequences through step(), against the reference model", () => {
  it("agree with the model, and keep I1, I3, well-formed actions and no regression on every step", () => {
    const taken = new Set<Transition>();
    fc.assert(
      fc.property(fc.array(move, { minLength: 1, maxLength: 80, size: "max" }), (moves) => {
        expect(walk(moves, taken)).toEqual([]);
      }),
      { numRuns: 800 },
    );
    // The walks went everywhere: every row of the table was taken at least once.
    expect(TABLE.filter((t) => !taken.has(t)).map((t) => `${t.from} on ${t.on}`)).toEqual([]);
  });
});

describe("the table, whole", () => {
  it("agrees with the model on every phase and event, including pairs no walk reaches", () => {
    for (const p of PHASES) {
      for (const e of EVENTS) {
        const t = step(p, e);
        expect(t === undefined ? undefined : { to: t.to, actions: [...t.actions] }, `${p} on ${e}`).toEqual(
          model(p, e),
        );
      }
    }
  });

  it("has one row per phase and event, all phases and events known, and every row well-formed and safe", () => {
    const seen = new Set<string>();
    for (const t of TABLE) {
      expect(PHASES).toContain(t.from);
      expect(PHASES).toContain(t.to);
      expect(EVENTS).toContain(t.on);
      expect(seen.has(`${t.from}/${t.on}`)).toBe(false);
      seen.add(`${t.from}/${t.on}`);
      expect(malformed(t), `${t.from} on ${t.on}`).toEqual([]);
      expect(unsafe(t), `${t.from} on ${t.on}`).toEqual([]);
      expect(regresses(t)).toBe(false);
    }
    expect(Object.isFrozen(TABLE)).toBe(true);
  });

  it("the checks catch rows that leave before telling, tell the user, end a holding quietly or go back", () => {
    const row = step("held", "closed") as Transition;
    const swapped: Transition = { ...row, actions: ["epoch", "disarm", "leaveBroken", "tell"] };
    expect(unsafe(swapped)).toContain("I1: leaveBroken before tell");
    expect(malformed(swapped)).toContain("leave* not last");
    expect(unsafe({ ...row, on: "close" })).toContain("I3: tell on a user's event");
    expect(unsafe({ ...row, from: "releasing" })).toContain("I3: tell from a phase that does not hold");
    const quiet: Transition = { ...row, to: "released", actions: ["epoch", "disarm", "end", "leaveBroken"] };
    expect(unsafe(quiet)).toContain("I1: a holding ended quietly");
    expect(unsafe({ ...row, actions: ["epoch", "disarm", "end", "leaveBroken"] })).toContain("I1: a loss without tell");
    expect(malformed({ ...row, actions: ["disarm", "epoch", "tell", "leaveBroken"] })).toContain("epoch not first");
    expect(malformed({ ...row, actions: ["epoch", "disarm", "tell", "leaveClean", "leaveBroken"] })).toContain(
      "two leave actions",
    );
    expect(regresses({ from: "held", on: "renewed", to: "connecting", actions: [] })).toBe(true);
  });

  it("every phase is reachable from released, and every phase but released can get back to released", () => {
    const reach = (from: Phase, next: (p: Phase) => Phase[]): Set<Phase> => {
      const seen = new Set<Phase>([from]);
      const todo = [from];
      for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
        for (const q of next(p)) {
          if (seen.has(q)) continue;
          seen.add(q);
          todo.push(q);
        }
      }
      return seen;
    };
    const out = (p: Phase): Phase[] => TABLE.filter((t) => t.from === p).map((t) => t.to);
    expect([...reach("released", out)].sort()).toEqual([...PHASES].sort());
    for (const p of PHASES) expect(reach(p, out).has("released"), p).toBe(true);
  });
});

describe("step, publicState, isHolding", () => {
  it("step() returns the table's own row, or undefined where the event does not apply", () => {
    expect(step("released", "grant")).toBeUndefined();
    expect(step("released", "deadline")).toBeUndefined();
    expect(step("lost", "closed")).toBeUndefined();
    expect(step("held", "start")).toBeUndefined();
    const t = step("held", "deadline");
    expect(TABLE).toContain(t);
    expect(t).toEqual({
      from: "held",
      on: "deadline",
      to: "lost",
      actions: ["epoch", "disarm", "tell", "leaveDrop"],
    });
    expect(step("releasing", "deadline")?.actions).toEqual(["epoch", "disarm", "end", "leaveDrop"]);
    // maxHoldS ends a holding as a loss the holder is told of, then gives up what it held; nowhere else.
    for (const from of ["held", "renewing"] as const) {
      expect(step(from, "maxHold")).toEqual({
        from,
        on: "maxHold",
        to: "lost",
        actions: ["epoch", "disarm", "tell", "leaveDrop"],
      });
    }
    expect(PHASES.filter((p) => step(p, "maxHold") !== undefined).sort()).toEqual(["held", "renewing"]);
    // error_not_leader: a renewal's is no loss (back to held, the alarm re-armed); nothing tells on it.
    expect(step("renewing", "notLeader")).toEqual({ from: "renewing", on: "notLeader", to: "held", actions: ["arm"] });
    // Before anything was asked nothing is on the connection; a queue place, a late grant or a holding being
    // released may still be, and is given up with the connection (not lent again).
    expect(step("connecting", "notLeader")).toMatchObject({
      to: "released",
      actions: ["epoch", "disarm", "end", "leaveClean"],
    });
    for (const from of ["queued", "confirming", "releasing"] as const) {
      expect(step(from, "notLeader")).toMatchObject({
        to: "released",
        actions: ["epoch", "disarm", "end", "leaveDrop"],
      });
    }
    expect(PHASES.filter((p) => step(p, "notLeader")?.actions.includes("tell"))).toEqual([]);
    expect(step("held", "notLeader")).toBeUndefined();
    expect(step("held", "release")?.actions).toEqual(["arm", "sendRelease"]);
    expect(step("lost", "start")).toMatchObject({ to: "connecting", actions: ["epoch"] });
  });

  it("publicState() shows a grant being confirmed as connecting, and every other phase as itself", () => {
    for (const p of PHASES) expect(publicState(p)).toBe(p === "confirming" ? "connecting" : p);
  });

  it("isHolding() is true in held and renewing only", () => {
    expect(PHASES.filter(isHolding).sort()).toEqual(["held", "renewing"]);
  });
});

describe("mermaid()", () => {
  const text = mermaid();
  const lines = text.split("\n");

  it("is a state diagram that starts in released", () => {
    expect(lines[0]).toBe("stateDiagram-v2");
    expect(lines[1]?.trim()).toBe("[*] --> released");
  });

  it("mentions every phase and every event of the table", () => {
    for (const p of new Set(TABLE.flatMap((t) => [t.from, t.to]))) expect(text).toMatch(new RegExp(`\\b${p}\\b`));
    for (const e of new Set(TABLE.map((t) => t.on))) expect(text).toMatch(new RegExp(`\\b${e}\\b`));
    expect(new Set(TABLE.flatMap((t) => [t.from, t.to])).size).toBe(PHASES.length);
    expect(new Set(TABLE.map((t) => t.on)).size).toBe(EVENTS.length);
  });

  it("has one edge per pair of phases, labelled with exactly its events, tell marked", () => {
    const edges = new Map<string, string[]>();
    for (const line of lines.slice(2)) {
      const m = /^ {4}(\w+) --> (\w+): (.+)$/.exec(line);
      expect(m, line).not.toBeNull();
      const [, from, to, label] = m as RegExpExecArray;
      expect(edges.has(`${from}>${to}`)).toBe(false);
      edges.set(`${from}>${to}`, (label as string).split(", "));
    }
    const expected = new Map<string, string[]>();
    for (const t of TABLE) {
      const k = `${t.from}>${t.to}`;
      expected.set(k, [...(expected.get(k) ?? []), t.actions.includes("tell") ? `${t.on} (tell)` : t.on]);
    }
    expect(new Map([...edges].map(([k, v]) => [k, [...v].sort()]))).toEqual(
      new Map([...expected].map(([k, v]) => [k, [...v].sort()])),
    );
  });
});
