/**
 * Builds a TypeScript JS app fixture (app.json + src/*.ts importing @microsoft/ccf-app) into
 * CCF's bundle exactly as the project's build does for the apps it ships
 * (scripts/app-bundle.mjs). Nothing is written to disk.
 */
import { buildTsAppBundle } from "../../scripts/app-bundle.mjs";

export interface BuiltBundle {
  readonly metadata: unknown;
  readonly modules: { name: string; module: string }[];
}

export function buildTsApp(dir: string): Promise<BuiltBundle> {
  return buildTsAppBundle(dir, { logLevel: "silent" });
}
