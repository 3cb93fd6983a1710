/**
 * This package's version, kept equal to package.json, jsr.json and deno.json
 * by a test.
 *
 * @module
 */

/** The package's version. */
export const VERSION = "0.1.0";
