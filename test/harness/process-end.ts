/**
 * Cleanups that must run when a test process ends, however it ends. An "exit"
 * handler alone is not enough: vitest ends its workers with SIGTERM (Ctrl-C
 * sends them SIGINT), and a signal's default action ends the process without
 * running "exit" handlers, on Node, Bun and Deno alike.
 */
import process from "node:process";

const cleanups: Array<() => void> = [];
let installed = false;

/** Run each registered cleanup once; one that throws is reported and the rest still run. */
function runCleanups(): void {
  // Taken out first, so a later "exit" after a signal runs nothing twice.
  for (const cleanup of cleanups.splice(0)) {
    try {
      cleanup();
    } catch (err) {
      process.stderr.write(`a process-end cleanup failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

function install(): void {
  process.once("exit", runCleanups);
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      runCleanups();
      // Our listener is gone now: with no other one, the signal sent again ends the process as by default (as
      // if it had never been caught); another listener, if any, decides what it does.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/**
 * Run `cleanup` when this process ends: at "exit", or on SIGTERM or SIGINT,
 * after which the process still ends by that signal. Cleanups run in the order
 * registered, synchronously, each at most once.
 */
export function onProcessEnd(cleanup: () => void): void {
  // One set of listeners for all cleanups, added only once something needs them: a process that registers
  // nothing keeps the signals' default actions.
  if (!installed) {
    installed = true;
    install();
  }
  cleanups.push(cleanup);
}
