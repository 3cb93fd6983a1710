/**
 * Request lines off one socket for the dflockd-compatible server, with the server's read
 * deadline: a line that does not complete in time ends the wait with
 * `"timeout"`. Lines come raw (with any `\r`); the session judges them.
 */

/** The longest delay a JavaScript timer holds (about 24.8 days); longer ones would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What reading one line can end in. */
export type LineResult = { line: Uint8Array } | "timeout" | "closed";

/** Buffers bytes and hands them out a line at a time. */
export class LineReader {
  #buf: Uint8Array = new Uint8Array(0);
  #closed = false;
  #pending: ((r: LineResult) => void) | undefined;

  /** Feed bytes received from the peer. */
  push(chunk: Uint8Array): void {
    const next = new Uint8Array(this.#buf.length + chunk.length);
    next.set(this.#buf);
    next.set(chunk, this.#buf.length);
    this.#buf = next;
    this.#poke();
  }

  /** The peer closed or the socket failed. */
  close(): void {
    this.#closed = true;
    this.#poke();
  }

  /**
   * The next line without its `\n` (a trailing `\r` is kept: the caller trims
   * it). `timeoutMs` of 0 or less waits forever.
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
      // Past what a timer can hold (about 24.8 days) the wait is as good as forever.
      if (timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS) timer = setTimeout(() => this.#pending?.("timeout"), timeoutMs);
    });
  }

  #poke(): void {
    if (this.#pending === undefined) return;
    const r = this.#take();
    if (r !== undefined) this.#pending(r);
  }

  #take(): LineResult | undefined {
    const nl = this.#buf.indexOf(0x0a);
    if (nl !== -1) {
      const line = this.#buf.subarray(0, nl);
      this.#buf = this.#buf.subarray(nl + 1);
      return { line };
    }
    return this.#closed ? "closed" : undefined;
  }
}
