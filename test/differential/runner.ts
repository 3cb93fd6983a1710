/**
 * Runs a request script against one server and writes down what came back,
 * normalised so that a real dflockd and the double can be compared: tokens
 * become T1, T2, … in order of appearance, stats' float seconds are rounded,
 * and each timed step records only whether its reply came inside the window
 * the script allows.
 */
import * as net from "node:net";

/** One step of a script. Connections are named; each opens on first use. */
export type Step =
  /** Send one request (three lines; `arg` may be empty) and read `replies` lines (default 1) at once. */
  | { c: string; req: [string, string, string]; replies?: number }
  /** Send raw bytes and read `replies` lines (default 0). */
  | { c: string; raw: string | Uint8Array; replies?: number }
  /** Send a request whose reply comes later (a blocking `l`/`w`); read it with `{ await }`. */
  | { c: string; later: [string, string, string] }
  /** Read `n` more lines (default 1) on `c`, which must arrive within `within` ms of the script's clock mark. */
  | { c: string; await: number; within?: [number, number] }
  /** Repeat `req` every `everyMs` until a reply matches `until`; record when, against `within`. */
  | { c: string; poll: [string, string, string]; until: RegExp; everyMs: number; within: [number, number] }
  /** Expect the server to close `c` (after any listed replies) within `within` ms of the mark. */
  | { c: string; closed: true; within?: [number, number] }
  /** Close `c` from the client side, at once (the server may not notice until it reads). */
  | { c: string; close: true }
  /** Finish sending on `c` (a FIN), and keep reading. */
  | { c: string; halfClose: true }
  /** Shut the server down as SIGTERM does (a real server gets SIGTERM). */
  | { shutdown: true }
  /** Wait: only where the passage of time is the subject (leases, timeouts). */
  | { sleep: number }
  /** Reset the clock mark that `within` counts from. */
  | { mark: true };

/** A named script and the server flags it needs. */
export interface Script {
  name: string;
  flags?: string[];
  steps: Step[];
}

/** Where to connect: plain TCP on loopback; and how to begin the server's graceful shutdown. */
export interface Target {
  host: string;
  port: number;
  shutdown?: () => void;
}

class Conn {
  readonly lines: string[] = [];
  closed = false;
  #buf = "";
  #wake: (() => void) | undefined;
  readonly sock: net.Socket;

  constructor(t: Target) {
    this.sock = net.connect(t.port, t.host);
    this.sock.setEncoding("latin1");
    this.sock.on("data", (d: string) => {
      this.#buf += d;
      for (let nl = this.#buf.indexOf("\n"); nl !== -1; nl = this.#buf.indexOf("\n")) {
        this.lines.push(this.#buf.slice(0, nl));
        this.#buf = this.#buf.slice(nl + 1);
      }
      this.#wake?.();
    });
    this.sock.on("error", () => {});
    this.sock.on("close", () => {
      this.closed = true;
      this.#wake?.();
    });
  }

  /** Resolve once `cond` holds or `ms` pass (then false). */
  until(cond: () => boolean, ms: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve(cond());
      }, ms);
      this.#wake = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(true);
      };
    });
  }
}

const TOKEN = /\b[0-9a-f]{32}\b/g;

/** Token names and float rounding, so two servers' transcripts compare. */
class Normaliser {
  readonly #tokens = new Map<string, string>();

  line(line: string): string {
    let out = line.replace(TOKEN, (t) => {
      let name = this.#tokens.get(t);
      if (name === undefined) {
        name = `T${this.#tokens.size + 1}`;
        this.#tokens.set(t, name);
      }
      return name;
    });
    if (out.startsWith("ok {")) out = `ok ${stats(out.slice(3))}`;
    return out;
  }
}

/**
 * A stats body with list order (Go map order, random) removed: each list
 * sorted, float seconds rounded, and the keys' raw JSON escapes listed sorted
 * (parsing alone would hide how a server escapes them).
 */
function stats(body: string): string {
  const raw = [...body.matchAll(/"key":("(?:[^"\\]|\\.)*")/g)].map((m) => m[1]).sort();
  const data = JSON.parse(body) as Record<string, unknown>;
  for (const [k, v] of Object.entries(data)) {
    if (!Array.isArray(v)) continue;
    const rows = v.map((row: Record<string, unknown>) => {
      const out: Record<string, unknown> = { ...row };
      if (typeof out.lease_expires_in_s === "number") out.lease_expires_in_s = `~${Math.ceil(out.lease_expires_in_s)}`;
      if (typeof out.idle_s === "number") out.idle_s = `~${Math.floor(out.idle_s)}`;
      return JSON.stringify(out);
    });
    data[k] = rows.sort();
  }
  return `${JSON.stringify(data)} keys ${raw.join(" ")}`;
}

/** Lines sent for a request; a real token in an argument is taken from the transcript's names. */
function encode(req: [string, string, string], tokens: Map<string, string>): string {
  const arg = req[2].replace(/\bT(\d+)\b/g, (m) => tokens.get(m) ?? m);
  return `${req[0]}\n${req[1]}\n${arg}\n`;
}

const REPLY_MS = 3_000;

/** Run `script` against `target`; returns the normalised transcript, one entry per observation. */
export async function runScript(script: Script, target: Target): Promise<string[]> {
  const conns = new Map<string, Conn>();
  const norm = new Normaliser();
  const byName = new Map<string, string>(); // "T1" -> real token
  const out: string[] = [];
  let mark = performance.now();
  const conn = (name: string): Conn => {
    let c = conns.get(name);
    if (c === undefined) {
      c = new Conn(target);
      conns.set(name, c);
    }
    return c;
  };
  const take = async (c: Conn, name: string, n: number, within?: [number, number]): Promise<void> => {
    const wait = within ? within[1] + 1_000 : REPLY_MS;
    for (let i = 0; i < n; i++) {
      const got = await c.until(() => c.lines.length > 0 || c.closed, wait);
      const at = performance.now() - mark;
      const line = c.lines.shift();
      if (!got || line === undefined) {
        out.push(`${name}: ${c.closed ? "<closed>" : "<no reply>"}`);
        return;
      }
      for (const m of line.matchAll(TOKEN)) {
        norm.line(m[0]);
      }
      const text = norm.line(line);
      for (const m of line.matchAll(TOKEN)) byName.set(norm.line(m[0]), m[0]);
      const timing = within ? (at >= within[0] && at <= within[1] ? " (in time)" : ` (at ${Math.round(at)} ms)`) : "";
      out.push(`${name}: ${text}${timing}`);
    }
  };
  try {
    for (const step of script.steps) {
      if ("sleep" in step) await new Promise((r) => setTimeout(r, step.sleep));
      else if ("mark" in step) mark = performance.now();
      else if ("req" in step) {
        const c = conn(step.c);
        c.sock.write(encode(step.req, byName));
        await take(c, step.c, step.replies ?? 1);
      } else if ("raw" in step) {
        const c = conn(step.c);
        c.sock.write(step.raw);
        await take(c, step.c, step.replies ?? 0);
      } else if ("later" in step) {
        conn(step.c).sock.write(encode(step.later, byName));
      } else if ("await" in step) {
        await take(conn(step.c), step.c, step.await, step.within);
      } else if ("poll" in step) {
        const c = conn(step.c);
        const end = mark + step.within[1] + 1_000;
        let hit = "";
        while (performance.now() < end && !c.closed) {
          c.sock.write(encode(step.poll, byName));
          await c.until(() => c.lines.length > 0 || c.closed, REPLY_MS);
          const line = c.lines.shift() ?? "";
          if (step.until.test(line)) {
            hit = line;
            break;
          }
          await new Promise((r) => setTimeout(r, step.everyMs));
        }
        const at = performance.now() - mark;
        const ok = hit !== "" && at >= step.within[0] && at <= step.within[1];
        out.push(
          `${step.c}: poll ${hit === "" ? "never matched" : norm.line(hit)} ${ok ? "(in time)" : `(at ${Math.round(at)} ms)`}`,
        );
      } else if ("closed" in step) {
        const c = conn(step.c);
        const wait = step.within ? step.within[1] + 1_000 : REPLY_MS;
        // Until the close itself (a reply first is kept), never only until a reply: a reply and the close that
        // follows it may or may not come in one read, so stopping at the reply made the transcript a race.
        await c.until(() => c.closed, wait);
        const at = performance.now() - mark;
        const extra = c.lines.splice(0).map((l) => norm.line(l));
        const timing = step.within
          ? at >= step.within[0] && at <= step.within[1]
            ? "in time"
            : `at ${Math.round(at)} ms`
          : "";
        out.push(
          `${step.c}: ${extra.length ? `${extra.join(" | ")} then ` : ""}${c.closed ? "closed" : "open"} ${timing}`.trim(),
        );
      } else if ("close" in step) {
        conn(step.c).sock.destroy();
      } else if ("halfClose" in step) {
        conn(step.c).sock.end();
      } else if ("shutdown" in step) {
        if (target.shutdown === undefined)
          throw new Error(`script "${script.name}" shuts the server down: give a Target with shutdown()`);
        target.shutdown();
      }
    }
  } finally {
    for (const c of conns.values()) c.sock.destroy();
  }
  return out;
}

/** How far two servers' `~N` seconds (stats' lease and idle times) may differ: timing, not behaviour. */
const SECONDS_TOLERANCE = 2;

/**
 * `got` with each `~N` that is within {@link SECONDS_TOLERANCE} of the one at
 * the same place in `want` replaced by it, so that a plain equality check
 * fails only on differences of behaviour.
 */
export function reconcile(want: readonly string[], got: readonly string[]): string[] {
  return got.map((line, i) => {
    const other = want[i];
    if (other === undefined) return line;
    const theirs = [...other.matchAll(/~(-?\d+)/g)].map((m) => Number(m[1]));
    let k = 0;
    return line.replace(/~(-?\d+)/g, (whole, n: string) => {
      const t = theirs[k++];
      return t !== undefined && Math.abs(t - Number(n)) <= SECONDS_TOLERANCE ? `~${t}` : whole;
    });
  });
}
