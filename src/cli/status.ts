/**
 * The one-line status a waiting command shows on a terminal: what it waits
 * for, where, for how long, and how many are ahead when the server's stats
 * can tell. Redrawn in place every second and erased when the wait ends.
 *
 * @module
 */
import type { OutputLike } from "./host.ts";

/** Erase the current terminal line and return to its start. */
const ERASE = "\r\u001b[2K";

/** What the status line shows, apart from the time. */
export interface StatusText {
  /** `lock "deploy"` or `semaphore "encoders"`. */
  what: string;
  /** `host:port` of the key's server. */
  server: string;
}

/**
 * The line for `waitedS` seconds of waiting with `ahead` waiters ahead (if known).
 *
 * @param text What and where.
 * @param waitedS Whole seconds waited.
 * @param ahead Waiters ahead, if the stats tell.
 * @param columns The terminal's width, if known: the line is cut to fit.
 * @returns The line, without erase codes.
 */
export function statusLine(text: StatusText, waitedS: number, ahead: number | undefined, columns?: number): string {
  const queue = ahead === undefined ? "" : `, ${ahead} ahead`;
  const line = `waiting for ${text.what} on ${text.server}: ${waitedS}s${queue}`;
  return columns !== undefined && columns > 1 && line.length >= columns ? `${line.slice(0, columns - 2)}…` : line;
}

/**
 * A status line on a terminal, redrawn every second until stopped. `poll` is
 * asked for the waiters ahead before each redraw; one poll at a time.
 */
export class StatusLine {
  readonly #out: OutputLike;
  readonly #text: StatusText;
  readonly #poll: () => Promise<number | undefined>;
  readonly #since = Date.now();
  #ahead: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #polling = false;
  #polls = 0;
  #shown = false;
  #stopped = false;

  /**
   * @param out Standard error (a terminal).
   * @param text What and where.
   * @param poll Waiters ahead, from the server's stats; `undefined` when they do not tell.
   */
  constructor(out: OutputLike, text: StatusText, poll: () => Promise<number | undefined>) {
    this.#out = out;
    this.#text = text;
    this.#poll = poll;
  }

  /** Draw now, then every second. */
  start(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#tick();
  }

  /** Stop redrawing and erase the line. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#shown) {
      this.#shown = false;
      await this.#out.write(ERASE);
    }
  }

  #tick(): void {
    this.#draw();
    this.#timer = setTimeout(() => this.#tick(), 1000);
    if (this.#polling) return;
    this.#polling = true;
    this.#poll().then(
      (n) => {
        this.#polling = false;
        // Waiters only leave from ahead of us (FIFO); a larger count includes those behind. The first
        // answer may predate our own place in the queue (one too few), so the minimum starts at the second.
        if (n !== undefined) {
          this.#ahead = this.#polls < 2 || this.#ahead === undefined ? n : Math.min(this.#ahead, n);
          this.#polls++;
        }
        this.#draw();
      },
      () => {
        this.#polling = false;
      },
    );
  }

  #draw(): void {
    if (this.#stopped) return;
    const waited = Math.floor((Date.now() - this.#since) / 1000);
    this.#shown = true;
    void this.#out.write(ERASE + statusLine(this.#text, waited, this.#ahead, this.#out.columns()));
  }
}
