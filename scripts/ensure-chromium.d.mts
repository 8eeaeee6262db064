export function findOrInstallChromium():
  { path: string; reason?: undefined } | { path?: undefined; reason: string };
