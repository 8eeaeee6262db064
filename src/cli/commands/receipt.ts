import type { Command } from "commander";

/** TODO(#2): placeholder until the command lands. */
export function registerReceipt(program: Command): void {
  program.command("receipt").description("(not yet implemented)");
}
