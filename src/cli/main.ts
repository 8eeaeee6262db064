/**
 * The `consortia` CLI: one entry point, one file per command under commands/. This layer is
 * the only place that prints to the console; commands throw CliError for user-facing failures.
 *
 * Start-up: each top-level command's module is imported only when it runs (the build splits
 * them into chunks), so `consortia ledger verify` does not load the X.509 builder, QuickJS or
 * the node. `--help`, no command or an unknown one loads them all, for the full help.
 */
import { Command, CommanderError } from "commander";
import { CliError } from "./cli-error.js";

type Register = (program: Command) => void;

/** Top-level commands, in help order, by the module that registers each. */
const COMMANDS: Readonly<Record<string, () => Promise<Register>>> = {
  app: async () => (await import("./commands/app.js")).registerApp,
  attestation: async () => (await import("./commands/attestation.js")).registerAttestation,
  console: async () => (await import("./commands/console.js")).registerConsole,
  keygen: async () => (await import("./commands/keygen.js")).registerKeygen,
  config: async () => (await import("./commands/config-init.js")).registerConfig,
  "cose-sign": async () => (await import("./commands/cose-sign.js")).registerCoseSign,
  gov: async () => (await import("./commands/gov.js")).registerGov,
  ledger: async () => (await import("./commands/ledger.js")).registerLedger,
  node: async () => (await import("./commands/node.js")).registerNode,
  receipt: async () => (await import("./commands/receipt.js")).registerReceipt,
  recovery: async () => (await import("./commands/recovery.js")).registerRecovery,
  registry: async () => (await import("./commands/registry.js")).registerRegistry,
  sandbox: async () => (await import("./commands/sandbox.js")).registerSandbox,
};

/**
 * The program with the commands `argv` needs: only the one it names, or all of them when it
 * names none that exists (help, --version, a typo that commander then reports).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command();
  program
    .name("consortia")
    .description("Consortia: a confidential consortium framework (CCF-compatible API).")
    .version("0.1.0")
    // Root options (--version) only before a command: `registry simulate-enclave --version V`.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  const named = argv[0];
  const only = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : null;
  for (const name of only ?? Object.keys(COMMANDS)) {
    const register = await COMMANDS[name]!();
    register(program);
  }
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = await buildProgram(argv);
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
