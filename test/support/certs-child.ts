/**
 * The child process of test/transport/certs-cleanup.test.ts, run by the
 * runtime under test: it makes the TLS test certificates and prints their
 * directory. With `wait` as its argument it then stays alive until a signal
 * ends it; without, it ends by itself.
 */
import process from "node:process";
import { testCerts } from "../harness/certs.ts";

console.log(testCerts().dir);
if (process.argv[2] === "wait") setInterval(() => {}, 60_000);
