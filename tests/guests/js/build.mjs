// Builds a JavaScript component with componentize-js: node build.mjs SOURCE WIT_DIR WORLD OUT
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const [sourcePath, witPath, worldName, out] = process.argv.slice(2);
const { component } = await componentize({ sourcePath, witPath, worldName });
await writeFile(out, component);
