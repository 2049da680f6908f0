/** The project root, for paths that must not depend on the current working directory. */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root (folder holding deno.json), independent of the current working directory. */
export const PROJECT_ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
