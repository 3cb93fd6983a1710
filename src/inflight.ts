/**
 * A connection's requests awaiting replies, oldest first, and how each hears
 * its outcome: a promise, or callbacks (the reply once its chunk is read, a
 * failure a microtask later).
 *
 * @module
 */

/** A reply's or failure's callback, given back the sender's `ctx` and `tag`. */
export type ReplyCallback<C> = (value: unknown, ctx: C, tag: number) => void;

/** One request waiting for its reply. */
export interface Pending {
  readonly command: string;
  readonly parse: (line: string, command: string) => unknown;
  readonly resolve: ReplyCallback<unknown>;
  readonly reject: ReplyCallback<unknown>;
  readonly timeoutMs: number;
  /** `undefined` for a promise's. */
  readonly ctx: unknown;
  readonly tag: number;
}

/** Built here only: one shape for all. */
export function pending<C>(
  command: string,
  parse: (line: string, command: string) => unknown,
  resolve: (value: never, ctx: C, tag: number) => void,
  reject: (error: never, ctx: C, tag: number) => void,
  timeoutMs: number,
  ctx: C,
  tag: number,
): Pending {
  return { command, parse, resolve, reject, timeoutMs, ctx, tag } as Pending;
}

/** One connection's requests awaiting replies. */
export class InFlight {
  readonly #queue: Pending[] = [];
  #head = 0;
  /** Callbacks' replies from the chunk being read: request, value, ... */
  readonly #answers: unknown[] = [];
  #handing = false;
  /**
   * Set while a request is written: a stream that answers inside `write()`
   * (in memory) has its replies handed over a microtask later, as a socket's
   * would come, never inside the caller's own call (a driver's action).
   */
  writing = false;
  #later = false;
  readonly #handOverLater = (): void => {
    this.#later = false;
    this.handOver();
  };

  get size(): number {
    return this.#queue.length - this.#head;
  }

  /** What the next reply answers. */
  get head(): Pending | undefined {
    return this.#queue[this.#head];
  }

  push(p: Pending): void {
    this.#queue.push(p);
  }

  /** Take the head off. @returns `true` if none is left. */
  shift(): boolean {
    const queue = this.#queue;
    if (++this.#head === queue.length) {
      // One at a time, the usual case: pop() is cheaper.
      if (queue.length === 1) queue.pop();
      else queue.length = 0;
      this.#head = 0;
      return true;
    }
    queue[this.#head - 1] = undefined as unknown as Pending;
    return false;
  }

  /** Take all off. */
  drain(): Pending[] {
    const waiting = this.#queue.splice(this.#head);
    this.#queue.length = 0;
    this.#head = 0;
    return waiting;
  }

  /** `p`'s reply: a promise's now, callbacks' at {@link handOver}. */
  answer(p: Pending, value: unknown): void {
    if (p.ctx === undefined) p.resolve(value, undefined, 0);
    else this.#answers.push(p, value);
  }

  /** Hand the chunk's replies over, in order; a throw stops none of the others. */
  handOver(): void {
    // A callback may lead to more replies read at once (an in-memory stream): this loop takes them.
    if (this.#handing || this.#answers.length === 0) return;
    if (this.writing) {
      if (!this.#later) queueMicrotask(this.#handOverLater);
      this.#later = true;
      return;
    }
    this.#handing = true;
    const answers = this.#answers;
    try {
      for (let i = 0; i < answers.length; i += 2) {
        const p = answers[i] as Pending;
        try {
          p.resolve(answers[i + 1], p.ctx, p.tag);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    } finally {
      answers.length = 0;
      this.#handing = false;
    }
  }
}

/** Fail `p`: a callback a microtask later, never inside the failing call (a close not yet told). */
export function fail(p: Pending, error: unknown): void {
  if (p.ctx === undefined) p.reject(error, undefined, 0);
  else queueMicrotask(() => p.reject(error, p.ctx, p.tag));
}
