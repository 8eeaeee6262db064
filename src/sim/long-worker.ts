/**
 * Worker thread of `npm run sim:long --jobs N` (long.ts): runs each seed job it is sent and
 * posts back its result. Holds no state between jobs.
 */
import { parentPort } from "node:worker_threads";
import { runSeed, type SeedJob } from "./long-run.js";

const port = parentPort;
if (port !== null) port.on("message", (job: SeedJob) => port.postMessage(runSeed(job)));
