/**
 * Part of `npm run check:package`, after the build: pack the npm tarball into
 * .test-tmp (where attw reads it next), print its size and files, and fail
 * when it unpacks to 1 MB (1,000,000 bytes) or more, or when the size the
 * README states (`<!-- size -->938 kB<!-- /size -->`) is more than 5 % off.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";

const LIMIT = 1_000_000;
/** How far the README's stated size may drift from the tarball's before it must be updated. */
const STATED_SLACK = 0.05;
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

if (existsSync("README.md")) {
  const stated = /<!-- size -->([\d.]+) kB<!-- \/size -->/.exec(readFileSync("README.md", "utf8"));
  if (stated === null) {
    console.error(
      "README.md must state the unpacked size as <!-- size -->NNN kB<!-- /size --> (in kB): the marker was not found",
    );
    process.exit(1);
  }
  const kb = Number(stated[1]);
  const actual = pack.unpackedSize / 1000;
  if (Math.abs(kb - actual) > actual * STATED_SLACK) {
    console.error(
      `README.md says the package unpacks to ${kb} kB, but it unpacks to ${kB(pack.unpackedSize)}: update the figure between <!-- size --> and <!-- /size -->`,
    );
    process.exit(1);
  }
  console.log(`README.md states ${kb} kB, within ${STATED_SLACK * 100} % of the tarball`);
}
