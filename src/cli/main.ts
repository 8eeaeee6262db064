/**
 * The `consortia` CLI: one entry point, one file per command under commands/. This layer is
 * the only place that prints to the console; commands throw CliError for user-facing failures.
 */
import { Command, CommanderError } from "commander";
import { CliError } from "./cli-error.js";
import { registerCoseSign } from "./commands/cose-sign.js";
import { registerGov } from "./commands/gov.js";
import { registerKeygen } from "./commands/keygen.js";
import { registerLedger } from "./commands/ledger.js";
import { registerNode } from "./commands/node.js";
import { registerReceipt } from "./commands/receipt.js";
import { registerRecovery } from "./commands/recovery.js";
import { registerSandbox } from "./commands/sandbox.js";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("consortia")
    .description("Consortia: a confidential consortium framework (CCF-compatible API).")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  registerKeygen(program);
  registerCoseSign(program);
  registerGov(program);
  registerLedger(program);
  registerNode(program);
  registerReceipt(program);
  registerRecovery(program);
  registerSandbox(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[], { from: "user" });
    return 0;
  } catch (err: unknown) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CliError) {
      process.stderr.write(`consortia: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
