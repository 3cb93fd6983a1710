/**
 * The parent's side of the shared-connection trial's holder (shared-holder.ts):
 * starting it with the runtime under test, its line protocol, and putting its
 * times on the parent's clock.
 *
 * One clock: `process.hrtime.bigint()` is CLOCK_MONOTONIC only under Node;
 * under Bun and Deno it counts from the process's start, and wall-clock times
 * (`performance.timeOrigin + performance.now()`) of two processes disagree by
 * most of a millisecond. So every time is the parent's `performance.now()`,
 * and the holder's are mapped onto it by an offset measured with pings: a
 * pong's time was read between the ping's sending and the pong's arrival, so
 * each ping bounds the offset to an interval, and the intersection of all
 * intervals (before and after the trial) bounds it to some tens of µs.
 * Both clocks are monotonic clocks of the same machine running at the same
 * rate; an empty intersection would say otherwise, and fails the trial.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runTs } from "../support/runtime.ts";
import type { HolderMessage } from "./shared-holder.ts";

const HOLDER = join(ROOT, "test", "faults", "shared-holder.ts");
/** The command line that runs the holder with the runtime under test. */
function holderCommand(args: string[]): Promise<[string, string[]]> {
  return runTs(HOLDER, args);
}

/** Bounds on `holder clock − parent clock`, in ms. */
export interface ClockOffset {
  readonly lo: number;
  readonly hi: number;
}

/**
 * A running holder process. Its stderr (where it logs its losses, as an
 * application would) goes to a file, so that this process has nothing to
 * read while the holder is telling its holdings.
 */
export class Holder {
  readonly #child: ChildProcess;
  readonly #log: string;
  readonly #seen: HolderMessage[] = [];
  #waiters: Array<() => void> = [];
  #buf = "";
  #garbled = "";
  #exited = false;

  private constructor(child: ChildProcess, log: string) {
    this.#child = child;
    this.#log = log;
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (d: string) => this.#onData(d));
    child.once("exit", () => {
      this.#exited = true;
      this.#wake();
    });
  }

  /** Start a holder for `<host> <port> <locks> <lease s> <key prefix>`; `tag` names its log file. */
  static async start(args: string[], tag: string): Promise<Holder> {
    const [cmd, argv] = await holderCommand(args);
    const dir = join(ROOT, ".test-tmp");
    mkdirSync(dir, { recursive: true });
    const log = join(dir, `shared-holder-${process.pid}-${tag}.log`);
    const fd = openSync(log, "w");
    try {
      return new Holder(spawn(cmd, argv, { cwd: ROOT, stdio: ["pipe", "pipe", fd] }), log);
    } finally {
      closeSync(fd);
    }
  }

  /** Where its stderr goes. */
  get logFile(): string {
    return this.#log;
  }

  /** Every message so far, in order. */
  get messages(): readonly HolderMessage[] {
    return this.#seen;
  }

  /** The end of what the holder printed on stderr, and any line of stdout that was not a message. */
  get stderr(): string {
    let log = "";
    try {
      log = readFileSync(this.#log, "utf8").slice(-2_000);
    } catch {
      // Not there (yet, or any more).
    }
    return `${this.#garbled}${log}`;
  }

  send(line: string): void {
    if (!this.#exited) this.#child.stdin?.write(`${line}\n`);
  }

  /**
   * The first message from index `from` on that `pick` accepts; rejects after
   * `timeoutMs`, or if the holder exits or reports an error first.
   */
  next<T>(pick: (m: HolderMessage) => T | undefined, timeoutMs: number, from = 0): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let i = from;
      const fail = (err: Error): void => {
        finish();
        const log = this.stderr;
        reject(new Error(`${err.message}${log === "" ? "" : `; its stderr ends: ${log}`}`));
      };
      const timer = setTimeout(
        () => fail(new Error(`the holder said nothing expected within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== check);
      };
      const check = (): void => {
        for (; i < this.#seen.length; i++) {
          const m = this.#seen[i] as HolderMessage;
          if (m.t === "error") {
            fail(new Error(`the holder failed: ${m.message}`));
            return;
          }
          const v = pick(m);
          if (v !== undefined) {
            finish();
            resolve(v);
            return;
          }
        }
        if (this.#exited) fail(new Error("the holder exited"));
      };
      this.#waiters.push(check);
      check();
    });
  }

  /** Until `when()` holds (checked now and on every message), or `timeoutMs`; `false` on time-out or exit. */
  async until(when: () => boolean, timeoutMs: number): Promise<boolean> {
    if (when()) return true;
    try {
      return await this.next((): true | undefined => (when() ? true : undefined), timeoutMs, this.#seen.length);
    } catch {
      return when();
    }
  }

  /**
   * Narrow `offset` with `samples` pings, one at a time (the holder must be
   * idle). Throws if the bounds no longer meet.
   */
  async calibrate(samples: number, offset: ClockOffset = { lo: -Infinity, hi: Infinity }): Promise<ClockOffset> {
    let { lo, hi } = offset;
    for (let k = 0; k < samples; k++) {
      const from = this.#seen.length;
      const sentAt = performance.now();
      this.send("ping");
      const pong = await this.next((m) => (m.t === "pong" ? m.now : undefined), 5_000, from);
      const arrivedAt = performance.now();
      lo = Math.max(lo, pong - arrivedAt);
      hi = Math.min(hi, pong - sentAt);
    }
    if (lo > hi) throw new Error(`the holder's clock and this one disagree (offset bounds ${lo} > ${hi})`);
    return { lo, hi };
  }

  /** Kill it (if still running), and remove its log unless `keepLog`. */
  kill(keepLog = false): void {
    if (!this.#exited) this.#child.kill("SIGKILL");
    if (!keepLog) rmSync(this.#log, { force: true });
  }

  #onData(d: string): void {
    this.#buf += d;
    for (let nl = this.#buf.indexOf("\n"); nl !== -1; nl = this.#buf.indexOf("\n")) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      try {
        this.#seen.push(JSON.parse(line) as HolderMessage);
      } catch {
        this.#garbled = `${this.#garbled}stdout: ${line}\n`.slice(-2_000);
      }
    }
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}
