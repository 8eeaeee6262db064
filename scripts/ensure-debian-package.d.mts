/** Types of ensure-debian-package.mjs for the TypeScript that imports it. */
export function findOrInstall(
  pkg: string,
  candidates: readonly string[],
): { path: string; reason?: undefined } | { path?: undefined; reason: string };
