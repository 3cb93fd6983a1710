/**
 * One timer for the deadlines of every held lock in the process. Arming and
 * clearing a runtime timer for each holding costs more than the rest of an
 * acquire and release together on some runtimes (about 1.2 µs per pair on
 * Deno); with many holdings the next deadline rarely changes, so this clock
 * keeps its deadlines in a binary heap and re-arms its one timer only when
 * the earliest one moves earlier. When none is left, the timer is not
 * cleared but lapses: it fires once at its time, finds nothing, and stops.
 * A loop of acquire and release with few holdings at once empties the heap
 * on nearly every release; clearing the timer there and arming one at the
 * next grant cost about 1.3 µs per operation on Deno (a fifth of the
 * client's own work at one worker, `npm run bench:inmemory`).
 * {@link AlarmClock.clearIfIdle} clears a lapsing timer at once: closing the
 * idle connections does (`closeIdleConnections()`, a client's `close()`), so
 * a test that closes them leaves no timer behind.
 * A timer armed under fake timers is cleared as soon as no alarm is left, as
 * before, and never trusted once they are gone: they can drop a timer without
 * the clock knowing (`clearAllTimers()` between tests), and a later alarm
 * would wait on it for ever. So is one armed while `setTimeout` is not the
 * function it was when the clock was made (jest's legacy timers, Deno's
 * `FakeTime`, a wrapper installed later): only a timer of the runtime's own
 * lapses. The timer never keeps the process alive.
 *
 * @module
 */
import { backgroundTimer } from "./transport.ts";

/** A deadline on the {@link AlarmClock}: `fire` runs once `at` has passed, unless cancelled first. */
export class Alarm {
  /** When it fires, in `performance.now()` milliseconds; meaningful while {@link Alarm.armed}. */
  at = 0;
  /** Its place in the clock's heap; -1 when not set. */
  index = -1;

  /** @param fire Called once when the deadline passes (after it is taken off the clock). */
  constructor(readonly fire: () => void) {}

  /** Whether it is set on the clock and has not fired. */
  get armed(): boolean {
    return this.index !== -1;
  }
}

/**
 * Whether `setTimeout` is a fake timers library's: `@sinonjs/fake-timers`
 * (which vitest and jest install) marks each function it installs with its
 * `clock`, and so does Bun's `jest.useFakeTimers()`, which keeps the same
 * function and marks it only while installed.
 */
export function fakeTimers(): boolean {
  return (globalThis.setTimeout as unknown as { clock?: unknown }).clock !== undefined;
}

/** The deadlines of {@link Alarm}s, served by one runtime timer. */
export class AlarmClock {
  /** Whether a timer may be left to lapse when no alarm is left (not under fake timers; tests force it). */
  readonly #mayLapse: () => boolean;
  readonly #heap: Alarm[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = 0;
  /** The `setTimeout` the timer was armed with: if the global is replaced (fake timers), it may never fire. */
  #armedWith: unknown;
  /** The `clearTimeout` of the same timers (a fake one cannot clear a real timer, nor the reverse). */
  #clearWith: (timer: ReturnType<typeof setTimeout>) => void = clearTimeout;
  /** Whether the timer was armed when it could not lapse: never trusted once no alarm is left, nor later. */
  #armedUnsure = false;

  /**
   * @param mayLapse Whether a timer armed now may be left to lapse: by
   * default, unless {@link fakeTimers}, or `setTimeout` is no longer the
   * function it was when the clock was made.
   */
  constructor(mayLapse?: () => boolean) {
    const own = globalThis.setTimeout;
    this.#mayLapse = mayLapse ?? (() => globalThis.setTimeout === own && !fakeTimers());
  }

  /** Alarms set and not yet fired or cancelled. */
  get size(): number {
    return this.#heap.length;
  }

  /** Set `alarm` to fire at `at` (moving it if it is already set). */
  set(alarm: Alarm, at: number): void {
    const heap = this.#heap;
    alarm.at = at;
    if (alarm.index === -1) {
      alarm.index = heap.length;
      heap.push(alarm);
    }
    this.#up(alarm.index);
    this.#down(alarm.index);
    this.#sync();
  }

  /** Take `alarm` off the clock (nothing if it is not set). */
  cancel(alarm: Alarm): void {
    this.#remove(alarm);
    this.#sync();
  }

  /** Clear the timer now if no alarm is set (it would only lapse). */
  clearIfIdle(): void {
    if (this.#heap.length !== 0 || this.#timer === undefined) return;
    this.#clearWith(this.#timer);
    this.#timer = undefined;
  }

  #remove(alarm: Alarm): void {
    const i = alarm.index;
    if (i === -1) return;
    const heap = this.#heap;
    const last = heap.pop() as Alarm;
    alarm.index = -1;
    if (last !== alarm) {
      heap[i] = last;
      last.index = i;
      this.#up(i);
      this.#down(last.index);
    }
  }

  /** Arm or move the timer for the earliest deadline; with none, leave an armed timer to lapse. */
  #sync(): void {
    const first = this.#heap[0];
    if (first === undefined) {
      if (this.#timer !== undefined && (this.#armedUnsure || !this.#mayLapse())) this.clearIfIdle();
      return;
    }
    if (this.#timer !== undefined) {
      // A timer that fires early finds nothing due and re-arms for what is left.
      const trusted = this.#armedWith === globalThis.setTimeout && this.#armedUnsure === !this.#mayLapse();
      if (this.#timerAt <= first.at && trusted) return;
      this.#clearWith(this.#timer);
    }
    this.#timerAt = first.at;
    this.#armedWith = globalThis.setTimeout;
    this.#clearWith = globalThis.clearTimeout;
    this.#armedUnsure = !this.#mayLapse();
    this.#timer = backgroundTimer(this.#onTimer, first.at - performance.now());
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    const heap = this.#heap;
    const now = performance.now();
    for (let first = heap[0]; first !== undefined && first.at <= now; first = heap[0]) {
      this.#remove(first);
      try {
        // An alarm it sets arms the timer at once, as a timer of its own would be.
        first.fire();
      } catch (err) {
        // One failing callback must not stop the others, nor escape into the runtime's timer code.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    this.#sync();
  };

  #up(i: number): void {
    const heap = this.#heap;
    const alarm = heap[i] as Alarm;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = heap[parentIndex] as Alarm;
      if (parent.at <= alarm.at) break;
      heap[i] = parent;
      parent.index = i;
      i = parentIndex;
    }
    heap[i] = alarm;
    alarm.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const alarm = heap[i] as Alarm;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && (heap[right] as Alarm).at < (heap[child] as Alarm).at) child = right;
      const c = heap[child] as Alarm;
      if (alarm.at <= c.at) break;
      heap[i] = c;
      c.index = i;
      i = child;
    }
    heap[i] = alarm;
    alarm.index = i;
  }
}

/** The clock every holding's renewals use. */
export const alarmClock: AlarmClock = new AlarmClock();
