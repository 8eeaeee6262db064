/** Process entry of the CLI (bundled to dist/cli.mjs). */
import { main } from "./main.js";

process.exitCode = await main(process.argv.slice(2));
