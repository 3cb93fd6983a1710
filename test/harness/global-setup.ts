/** Runs once before the integration suite: make sure a dflockd binary exists (installing it if needed). */
import { findDflockd } from "./dflockd.ts";

export default function setup(): void {
  process.env.DFLOCKD_BIN = findDflockd();
}
