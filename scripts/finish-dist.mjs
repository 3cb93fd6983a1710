/**
 * The build's last step, after tsup (`npm run build`): what the package ships
 * of `dist/` (or of the directory given) is made smaller without losing what
 * a user debugs with.
 *
 * - Source maps are reduced to lines: no `sourcesContent`, no `names`, and one
 *   mapping per generated line, to the source line it starts (column 0 on
 *   both sides, so that any column of a line maps to it). A stack trace under
 *   `node --enable-source-maps` names `src/<file>.ts:<line>`, the same file
 *   and line as in the repository and the JSR package of the same version.
 *   (Bun ignores the maps and names the bundled file's own line; Deno shows
 *   the source line against the bundled file's name, with full maps too.)
 *   The bundled JavaScript is not minified and reads on its own. Full maps would be about four times the size of the code.
 * - A repeated `//# sourceMappingURL=` line (rollup's and tsup's, in the
 *   CommonJS files) is written once.
 * - Declarations are written once: each entry's ESM types (`<entry>.d.ts`)
 *   re-export its CommonJS types (`<entry>.d.cts`), the one copy.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2] ?? "dist";
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIGIT = new Map([...B64].map((c, i) => [c, i]));

/** The numbers of one Base64 VLQ segment. */
function decode(segment) {
  const out = [];
  let value = 0;
  let shift = 0;
  for (const c of segment) {
    const d = DIGIT.get(c);
    if (d === undefined) throw new Error(`bad source map digit ${JSON.stringify(c)}`);
    value += (d & 31) * 2 ** shift;
    if (d & 32) {
      shift += 5;
    } else {
      out.push(value % 2 === 1 ? -(value - 1) / 2 : value / 2);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

/** One number as Base64 VLQ. */
function encode(n) {
  let v = n < 0 ? -n * 2 + 1 : n * 2;
  let s = "";
  do {
    let d = v % 32;
    v = Math.floor(v / 32);
    if (v > 0) d |= 32;
    s += B64[d];
  } while (v > 0);
  return s;
}

/** `mappings` with one segment per generated line: column 0 to the first mapped segment's source and line. */
function linesOnly(mappings) {
  let source = 0;
  let line = 0;
  let lastSource = 0;
  let lastLine = 0;
  return mappings
    .split(";")
    .map((generated) => {
      let first;
      for (const segment of generated === "" ? [] : generated.split(",")) {
        const d = decode(segment);
        if (d.length < 4) continue;
        source += d[1];
        line += d[2];
        first ??= [source, line];
      }
      if (first === undefined) return "";
      const out = encode(0) + encode(first[0] - lastSource) + encode(first[1] - lastLine) + encode(0);
      [lastSource, lastLine] = first;
      return out;
    })
    .join(";");
}

const files = readdirSync(dir);
for (const file of files) {
  const path = join(dir, file);
  if (file.endsWith(".map")) {
    const map = JSON.parse(readFileSync(path, "utf8"));
    delete map.sourcesContent;
    map.names = [];
    map.mappings = linesOnly(map.mappings);
    writeFileSync(path, JSON.stringify(map));
  } else if (/\.(c?js)$/.test(file)) {
    const code = readFileSync(path, "utf8");
    const once = code.replace(/(\n\/\/# sourceMappingURL=[^\n]+)+\n?$/, (all) => `\n${all.trim().split("\n")[0]}\n`);
    if (once !== code) writeFileSync(path, once);
  } else if (file.endsWith(".d.cts") && existsSync(join(dir, file.replace(/\.d\.cts$/, ".cjs")))) {
    const entry = file.replace(/\.d\.cts$/, "");
    writeFileSync(join(dir, `${entry}.d.ts`), `export * from "./${entry}.cjs";\n`);
  }
}
// Declarations of no entry (chunks of ESM declarations), which nothing uses now.
for (const file of files) {
  if (file.endsWith(".d.ts") && !existsSync(join(dir, file.replace(/\.d\.ts$/, ".cjs")))) rmSync(join(dir, file));
}
