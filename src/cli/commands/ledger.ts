import type { Command } from "commander";

/** TODO(#2): placeholder until the command lands. */
export function registerLedger(program: Command): void {
  program.command("ledger").description("(not yet implemented)");
}
