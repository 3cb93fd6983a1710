/**
 * A stand-in for `FinalizationRegistry` in unit tests: registrations are
 * kept, and a test "collects" a target by hand, which runs the cleanup for
 * each of its registrations. `useFakeRegistry()` installs it for a file.
 * The real registry under a real GC is test/integration/abandoned.test.ts.
 */
import { afterAll, beforeAll, vi } from "vitest";

/** The fake registry class, installed as the global `FinalizationRegistry`. */
export class FakeRegistry {
  /** Every registry made, in order. */
  static readonly all: FakeRegistry[] = [];
  /** The registry made last. */
  static last: FakeRegistry | undefined;
  readonly cells: Array<{ target: object; held: unknown; token: object | undefined }> = [];

  constructor(readonly cleanup: (held: unknown) => void) {
    FakeRegistry.all.push(this);
    FakeRegistry.last = this;
  }

  register(target: object, held: unknown, unregisterToken?: object): void {
    // The real one refuses this too.
    if (target === held) throw new TypeError("target and held value are the same");
    this.cells.push({ target, held, token: unregisterToken });
  }

  unregister(unregisterToken: object): boolean {
    const before = this.cells.length;
    for (let i = this.cells.length - 1; i >= 0; i--) {
      if (this.cells[i]?.token === unregisterToken) this.cells.splice(i, 1);
    }
    return this.cells.length < before;
  }

  /** `target` became unreachable: its cells in this registry go, and the cleanup runs for each. */
  collect(target: object): void {
    for (const cell of this.cells.filter((c) => c.target === target)) {
      this.cells.splice(this.cells.indexOf(cell), 1);
      this.cleanup(cell.held);
    }
  }

  /** `target` became unreachable: in every registry. */
  static collect(target: object): void {
    for (const r of FakeRegistry.all) r.collect(target);
  }

  /** Registrations of `target`, over every registry. */
  static watching(target: object): number {
    return FakeRegistry.all.reduce((n, r) => n + r.cells.filter((c) => c.target === target).length, 0);
  }
}

/** Replace the global `FinalizationRegistry` with {@link FakeRegistry} for the calling test file. */
export function useFakeRegistry(): void {
  beforeAll(() => {
    vi.stubGlobal("FinalizationRegistry", FakeRegistry);
  });
  afterAll(() => {
    vi.unstubAllGlobals();
  });
}
