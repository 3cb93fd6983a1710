/** The public API with the adapter of the runtime running the tests (via mod.ts). */
export * from "../../mod.ts";
export { runtime } from "../../src/transport.ts";
