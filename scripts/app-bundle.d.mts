export function buildTsAppBundle(
  dir: string,
  options?: { logLevel?: "silent" | "error" | "warning" | "info" },
): Promise<{ metadata: unknown; modules: { name: string; module: string }[] }>;
