/**
 * `consortia recovery share`: one recovery member's part in a disaster recovery
 * (ccf-compatibility.md §8.3).
 * Once the recovered service is WaitingForRecoveryShares, it fetches the member's encrypted share
 * (GET /gov/recovery/encrypted-shares/{id}), decrypts it with the member's RSA encryption key
 * (RSA-OAEP-SHA256), and submits it COSE-signed as recovery_share
 * (POST /gov/recovery/members/{id}:recover). It prints the node's answer, which counts the
 * shares and says when the last one needed started the end of the recovery; then (unless
 * --no-wait) it follows the private replay's progress (/node/metrics) until the service is Open.
 *
 * The member's files default to a sandbox workspace: <workspace>/sandbox_common/<NAME>_cert.pem,
 * <NAME>_privk.pem and <NAME>_enc_privk.pem (what `consortia keygen --gen-enc-key` writes).
 */
import { join } from "node:path";
import type { Command } from "commander";
import { memberIdFromCert } from "../../crypto/identity.js";
import { decryptShare, RecoveryError } from "../../node/recovery/recovery-shares.js";
import { CliError, isReportable } from "../cli-error.js";
import { ClientError } from "@consortia/client";
import { GovClient, type MemberSigner } from "../gov-client.js";
import { addConnectionOptions, readText, type ConnectionOptions } from "./gov.js";

const HELP_AFTER = `
Run it once per recovery member until the answer says "End of recovery procedure initiated".

Examples:
  consortia recovery share --member member0               (files from ./workspace)
  consortia recovery share --node https://ccf.example:443 --cacert service_cert.pem \\
    --cert alice_cert.pem --key alice_privk.pem --enc-key alice_enc_privk.pem
`;

/** Fetches, decrypts and submits one member's share; returns the node's message. */
export async function submitMemberShare(
  client: GovClient,
  member: MemberSigner,
  encryptionKeyPem: string,
): Promise<string> {
  const memberId = memberIdFromCert(member.certPem);
  const encrypted = await client.encryptedRecoveryShare(memberId);
  const share = decryptShare(encrypted, encryptionKeyPem);
  return client.submitRecoveryShare(share, member);
}

interface ShareOptions extends ConnectionOptions {
  member?: string;
  encKey?: string;
  wait: boolean;
  timeout: string;
}

const END_OF_RECOVERY = "End of recovery procedure initiated";

/**
 * After the last share: follows the private replay (/node/metrics `recovery`) until the service
 * is Open, printing progress each second. Throws when it is not Open within `timeoutS`.
 */
async function followRecovery(client: GovClient, timeoutS: number): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000;
  let last = "";
  for (;;) {
    const info = await client.serviceInfo();
    if (info.status === "Open") {
      process.stdout.write("service is Open: recovery complete\n");
      return;
    }
    const metrics = await client.requestJson<{
      recovery?: { phase: string; replayed_seqno: number; up_to: number; percent: number };
    }>("GET", "/node/metrics");
    const r = metrics?.recovery;
    const line =
      r === undefined
        ? `service is ${info.status}`
        : `${r.phase}: seqno ${r.replayed_seqno} of ${r.up_to} (${r.percent}%)`;
    if (line !== last) process.stdout.write(`${line}\n`);
    last = line;
    if (Date.now() > deadline) {
      throw new CliError(`the service is not Open after ${timeoutS} s (${line})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

export function registerRecovery(program: Command): void {
  const recovery = program
    .command("recovery")
    .description("Disaster recovery steps for members (see docs: recovering a service).");
  addConnectionOptions(
    recovery
      .command("share")
      .description("Fetch, decrypt and submit one member's recovery share.")
      .option("--member <name>", "member name in the workspace (its cert, key and enc key)")
      .option("--enc-key <file>", "member RSA encryption private key (default: workspace)")
      .option("--no-wait", "after the last share, do not follow the private replay until Open")
      .option("--timeout <s>", "how long to follow the private replay", "3600"),
  )
    .addHelpText("after", HELP_AFTER)
    .action(async (options: ShareOptions) => {
      const common = join(options.workspace, "sandbox_common");
      const name = options.member ?? "member0";
      const certPem = readText(options.cert ?? join(common, `${name}_cert.pem`), "--cert");
      const keyPem = readText(options.key ?? join(common, `${name}_privk.pem`), "--key");
      const encPath = options.encKey ?? join(common, `${name}_enc_privk.pem`);
      const encryptionKeyPem = readText(encPath, "--enc-key");
      const caPem = readText(options.cacert ?? join(common, "service_cert.pem"), "--cacert");
      let client: GovClient;
      try {
        client = new GovClient({ url: options.node, caPem, certPem, keyPem });
      } catch (err: unknown) {
        if (!isReportable(err)) throw err;
        throw new CliError(`cannot connect to ${options.node}: ${err.message}`);
      }
      try {
        const message = await submitMemberShare(client, { certPem, keyPem }, encryptionKeyPem);
        process.stdout.write(`${message}\n`);
        if (options.wait && message.includes(END_OF_RECOVERY)) {
          const timeoutS = Number(options.timeout);
          if (!(timeoutS > 0)) throw new CliError("--timeout must be a positive number of seconds");
          await followRecovery(client, timeoutS);
        }
      } catch (err: unknown) {
        if (err instanceof ClientError || err instanceof RecoveryError) {
          throw new CliError(err.message);
        }
        throw err;
      } finally {
        client.close();
      }
    });
}
