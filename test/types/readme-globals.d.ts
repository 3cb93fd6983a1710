// What README.md's examples use without defining it: the lock of an earlier
// example, the reader's own functions, and Deno's test runner. Used by
// readme-check.mjs only.
import type { DistributedLock } from "../../src/index.ts";

declare global {
  const lock: DistributedLock;
  function buildReport(name: string): Promise<void>;
  function charge(customer: string, options: { fence: string | undefined }): Promise<void>;
  function doOneStep(): Promise<void>;
  function tellTheDashboard(status: string): Promise<void>;
  const metrics: { increment(name: string, tags: Record<string, string>): void };
  const log: { error(fields: object, message: string): void };
  namespace Deno {
    function test(name: string, fn: () => void | Promise<void>): void;
  }
}
