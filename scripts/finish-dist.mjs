/**
 * The build's last step, after tsup (`npm run build`): what the package ships
 * of `dist/` (or of the directory given) is made smaller without losing what
 * a user debugs with.
 *
 * - Source maps are reduced to lines: no `sourcesContent`, no `names`, and one
 *   mapping per generated line, to the source line of its code, the first
 *   segment at or after its indentation (column 0 on both sides, so that any
 *   column of a line maps to it). A stack trace under
 *   `node --enable-source-maps` names `src/<file>.ts:<line>`, the same file
 *   and line as in the repository and the JSR package of the same version.
 *   (Bun ignores the maps and names the bundled file's own line; Deno shows
 *   the source line against the bundled file's name, with full maps too.)
 *   The bundled JavaScript is not minified and reads on its own. Full maps would be about four times the size of the code.
 * - A repeated `//# sourceMappingURL=` line (rollup's and tsup's, in the
 *   CommonJS files) is written once.
 * - The doc comments (`/** … *\/`) esbuild keeps in the bundled JavaScript
 *   (those of class members) are taken out with their lines, and those lines
 *   out of the file's map. The declarations (`.d.cts`) carry the public
 *   API's docs to editors; internal members' docs are in the repository and
 *   the JSR package. They are found by TypeScript's parser, never by a pattern,
 *   and a file whose code, printed without comments, is not the same
 *   afterwards fails the build.
 * - Declarations are written once: each entry's ESM types (`<entry>.d.ts`)
 *   re-export its CommonJS types (`<entry>.d.cts`), the one copy.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";

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

/**
 * `mappings` with one segment per generated line: column 0 to the source and
 * line of the first segment at or after the line's indentation that does not
 * repeat the source position of the segment before it (its code: esbuild
 * often starts a line with a segment that carries on the line before, as
 * inside an object literal, and its CommonJS build repeats it at the `if` of
 * an `else if`), else of its first segment. `lines` tells the
 * code's indentation per generated line, and which lines were taken out of
 * the code (those are left out here too).
 */
function linesOnly(mappings, lines) {
  let source = 0;
  let line = 0;
  let sourceColumn = 0;
  /** The source position of the segment before, to tell a segment that repeats it (carries on earlier code). */
  let previous = "";
  let lastSource = 0;
  let lastLine = 0;
  return mappings
    .split(";")
    .map((generated, i) => {
      const indent = lines?.indents[i] ?? 0;
      let column = 0;
      let first;
      let code;
      for (const segment of generated === "" ? [] : generated.split(",")) {
        const d = decode(segment);
        column += d[0];
        if (d.length < 4) continue;
        source += d[1];
        line += d[2];
        sourceColumn += d[3];
        const at = `${source}:${line}:${sourceColumn}`;
        const carried = at === previous;
        previous = at;
        first ??= [source, line];
        if (code === undefined && column >= indent && !carried) code = [source, line];
      }
      if (lines?.dropped.has(i)) return undefined;
      const pick = code ?? first;
      if (pick === undefined) return "";
      const out = encode(0) + encode(pick[0] - lastSource) + encode(pick[1] - lastLine) + encode(0);
      [lastSource, lastLine] = pick;
      return out;
    })
    .filter((group) => group !== undefined)
    .join(";");
}

/** Whether only spaces and tabs stand between `from` and the line's end, going forwards (`step` 1) or back (-1). */
function blankTo(text, from, step) {
  for (let i = from; i >= 0 && i < text.length; i += step) {
    const c = text[i];
    if (c === "\n") return true;
    if (c !== " " && c !== "\t") return false;
  }
  return true;
}

/**
 * `code` without the `/** … *\/` comments that stand on lines of their own,
 * and the numbers (from 0) of the lines taken out with them.
 */
function withoutDocComments(code, file) {
  const parse = (text) => ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const source = parse(code);
  const found = new Map();
  const visit = (node) => {
    for (const c of ts.getLeadingCommentRanges(code, node.pos) ?? []) {
      if (code.startsWith("/**", c.pos) && blankTo(code, c.pos - 1, -1) && blankTo(code, c.end, 1)) found.set(c.pos, c);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  const dropped = new Set();
  let out = "";
  let at = 0;
  let line = 0;
  for (const c of [...found.values()].sort((x, y) => x.pos - y.pos)) {
    const start = code.lastIndexOf("\n", c.pos - 1) + 1;
    const next = code.indexOf("\n", c.end);
    if (next === -1) continue;
    line += count(code, at, start);
    const lines = count(code, start, next + 1);
    for (let i = 0; i < lines; i++) dropped.add(line + i);
    line += lines;
    out += code.slice(at, start);
    at = next + 1;
  }
  out += code.slice(at);
  const bare = ts.createPrinter({ removeComments: true });
  if (bare.printFile(parse(out)) !== bare.printFile(source)) {
    throw new Error(`${file}: taking out its doc comments changed its code`);
  }
  return { code: out, dropped };
}

/** How many line ends `text` has from `from` to `to`. */
function count(text, from, to) {
  let n = 0;
  for (let i = text.indexOf("\n", from); i !== -1 && i < to; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

const files = readdirSync(dir);
/** Per map file, its code's indentation per line and the lines taken out of it. */
const codeLines = new Map();
for (const file of files) {
  if (!/\.(c?js)$/.test(file)) continue;
  const path = join(dir, file);
  const code = readFileSync(path, "utf8");
  const lean = withoutDocComments(code, file);
  const indents = code.split("\n").map((l) => Math.max(0, l.search(/\S/)));
  codeLines.set(`${file}.map`, { dropped: lean.dropped, indents });
  const once = lean.code.replace(/(\n\/\/# sourceMappingURL=[^\n]+)+\n?$/, (all) => `\n${all.trim().split("\n")[0]}\n`);
  if (once !== code) writeFileSync(path, once);
}
for (const file of files) {
  const path = join(dir, file);
  if (file.endsWith(".map")) {
    const map = JSON.parse(readFileSync(path, "utf8"));
    delete map.sourcesContent;
    map.names = [];
    map.mappings = linesOnly(map.mappings, codeLines.get(file));
    writeFileSync(path, JSON.stringify(map));
  } else if (file.endsWith(".d.cts") && existsSync(join(dir, file.replace(/\.d\.cts$/, ".cjs")))) {
    const entry = file.replace(/\.d\.cts$/, "");
    writeFileSync(join(dir, `${entry}.d.ts`), `export * from "./${entry}.cjs";\n`);
  }
}
// Declarations of no entry (chunks of ESM declarations), which nothing uses now.
for (const file of files) {
  if (file.endsWith(".d.ts") && !existsSync(join(dir, file.replace(/\.d\.ts$/, ".cjs")))) rmSync(join(dir, file));
}
