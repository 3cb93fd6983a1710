/** The recorded transcripts of real servers (see record.ts). */
import type { DoubleOptions } from "../double/server.ts";

/** The file beside this one that holds them. */
export const RECORDED_FILE = "recorded.json";

/** One real build's answers to every script. */
export interface Recording {
  /** The reply forms the build was found to use. */
  forms: DoubleOptions;
  /** When (YYYY-MM-DD). */
  recorded: string;
  /** Script name → normalised transcript. */
  transcripts: Record<string, string[]>;
}
