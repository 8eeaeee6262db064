import type { Command } from "commander";

/** TODO(#2): placeholder until the command lands. */
export function registerKeygen(program: Command): void {
  program.command("keygen").description("(not yet implemented)");
}
