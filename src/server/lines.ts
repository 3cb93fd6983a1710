/**
 * Request lines off one connection for the dflockd-compatible server, with
 * the server's read deadline: a line that does not complete in time ends the
 * wait with `"timeout"`. Lines come raw (with any trailing `\r`); the session
 * judges them. Memory stays bounded as on dflockd, which reads a line into
 * 256 bytes and stops reading while it is busy: a line past the limit is
 * kept only as "overlong", and past a high-water mark of unread bytes the
 * reader asks its connection to stop reading until the session catches up.
 *
 * @module
 */

/** The longest delay a JavaScript timer holds (about 24.8 days); longer ones would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `seconds` as a timer's delay, capped at what a timer can hold (a longer setting waits about 24.8 days). */
export function delayOf(seconds: number): number {
  return Math.min(seconds * 1000, MAX_TIMER_MS);
}

/** What reading one line can end in. */
export type LineResult = { line: Uint8Array } | "overlong" | "timeout" | "closed";

/** How a reader counts and holds back. */
export interface LineReaderOptions {
  /** Longest line kept, in bytes without its `\n`; a longer one is `"overlong"`. */
  readonly maxLine: number;
  /** Delete every `\r` as it arrives (later builds), so that they do not count. */
  readonly dropCr: boolean;
  /** Unread bytes past which `full()` is called. */
  readonly highWater: number;
  /** Stop reading from the peer. */
  full(): void;
  /** Read again: what was unread has fallen below a quarter of `highWater`. */
  room(): void;
}

/** Buffers bytes and hands them out a line at a time. */
export class LineReader {
  readonly #o: LineReaderOptions;
  /** Complete lines not yet taken. */
  readonly #ready: (Uint8Array | "overlong")[] = [];
  /** Pieces of the line still coming, and their length. */
  #partial: Uint8Array[] = [];
  #partialLength = 0;
  #overlong = false;
  /** Bytes held: complete lines and the partial one. */
  #held = 0;
  #stopped = false;
  #closed = false;
  #pending: ((r: LineResult) => void) | undefined;

  constructor(options: LineReaderOptions) {
    this.#o = options;
  }

  /** Feed bytes received from the peer. */
  push(chunk: Uint8Array): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      this.#add(chunk.subarray(start, end));
      if (nl === -1) break;
      this.#finish();
      start = nl + 1;
    }
    if (!this.#stopped && this.#held > this.#o.highWater) {
      this.#stopped = true;
      this.#o.full();
    }
    this.#poke();
  }

  /** The peer closed or the socket failed. */
  close(): void {
    this.#closed = true;
    this.#poke();
  }

  /**
   * The next line without its `\n` (a trailing `\r` is kept: the caller trims
   * it). `timeoutMs` of 0 or less, or past what a timer holds, waits forever.
   */
  next(timeoutMs: number): Promise<LineResult> {
    const ready = this.#take();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.#pending = (r) => {
        if (timer !== undefined) clearTimeout(timer);
        this.#pending = undefined;
        resolve(r);
      };
      if (timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS) timer = setTimeout(() => this.#pending?.("timeout"), timeoutMs);
    });
  }

  #add(piece: Uint8Array): void {
    const kept = this.#o.dropCr ? piece.filter((b) => b !== 0x0d) : piece;
    if (this.#overlong || kept.length === 0) return;
    if (this.#partialLength + kept.length > this.#o.maxLine) {
      // Past the limit: nothing more of this line is kept; the rest is dropped up to its `\n`.
      this.#held -= this.#partialLength;
      this.#partial = [];
      this.#partialLength = 0;
      this.#overlong = true;
      return;
    }
    // A copy (a Buffer's slice() would not be one): the runtime may reuse the chunk's memory.
    this.#partial.push(kept === piece ? new Uint8Array(piece) : kept);
    this.#partialLength += kept.length;
    this.#held += kept.length;
  }

  #finish(): void {
    if (this.#overlong) this.#ready.push("overlong");
    else if (this.#partial.length === 1) this.#ready.push(this.#partial[0] as Uint8Array);
    else {
      const line = new Uint8Array(this.#partialLength);
      let at = 0;
      for (const p of this.#partial) {
        line.set(p, at);
        at += p.length;
      }
      this.#ready.push(line);
    }
    this.#partial = [];
    this.#partialLength = 0;
    this.#overlong = false;
  }

  #poke(): void {
    if (this.#pending === undefined) return;
    const r = this.#take();
    if (r !== undefined) this.#pending(r);
  }

  #take(): LineResult | undefined {
    const line = this.#ready.shift();
    if (line === undefined) return this.#closed ? "closed" : undefined;
    if (line !== "overlong") this.#held -= line.length;
    if (this.#stopped && this.#held <= this.#o.highWater / 4) {
      this.#stopped = false;
      this.#o.room();
    }
    return line === "overlong" ? line : { line };
  }
}
