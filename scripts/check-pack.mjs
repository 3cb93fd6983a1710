/**
 * Part of `npm run check:package`, after the build: pack the npm tarball into
 * .test-tmp (where attw reads it next), print its size and files, and fail
 * when it unpacks to 1 MB (1,000,000 bytes) or more.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";

const LIMIT = 1_000_000;
const kB = (n) => `${(n / 1000).toFixed(1)} kB`;

mkdirSync(".test-tmp", { recursive: true });
// Built already: --ignore-scripts leaves out prepack's second build (whose output would also mix into the JSON).
const out = execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", ".test-tmp"], {
  encoding: "utf8",
});
const [pack] = JSON.parse(out);
for (const f of pack.files) console.log(`${kB(f.size).padStart(10)}  ${f.path}`);
const line = `${pack.filename}: ${pack.entryCount} files, ${kB(pack.size)} packed, ${kB(pack.unpackedSize)} unpacked (${pack.unpackedSize} bytes)`;
if (pack.unpackedSize >= LIMIT) {
  console.error(`${line}: the unpacked tarball must stay under 1 MB (${LIMIT} bytes)`);
  process.exit(1);
}
console.log(`${line}, under the 1 MB limit`);
