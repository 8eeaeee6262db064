/**
 * Templates of proposals for the actions of the service's constitution: the action names are
 * read from the constitution's source (the entries of the default constitution's actions map,
 * ccf-compatibility.md §4.3, and those its extensions add with actions.set); each gets the arguments the default
 * constitution's validate expects, with the signing member's id or the first user's filled in
 * where an action names one. An action this list does not know gets empty arguments.
 */

type Args = Record<string, unknown>;

export interface TemplateContext {
  readonly memberId: string;
  readonly userId: string;
  readonly nodeId: string;
}

const PEM = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";

const KNOWN: Readonly<Record<string, (c: TemplateContext) => Args>> = {
  set_constitution: () => ({ constitution: "// the whole constitution's source" }),
  set_member: () => ({ cert: PEM, member_data: {} }),
  remove_member: (c) => ({ member_id: c.memberId }),
  set_member_data: (c) => ({
    member_id: c.memberId,
    member_data: { note: "set from the console" },
  }),
  set_user: () => ({ cert: PEM, user_data: {} }),
  remove_user: (c) => ({ user_id: c.userId }),
  set_user_data: (c) => ({ user_id: c.userId, user_data: { role: "auditor" } }),
  set_recovery_threshold: () => ({ recovery_threshold: 1 }),
  set_service_configuration: () => ({ recent_cose_proposals_window_size: 100 }),
  transition_service_to_open: () => ({ next_service_identity: PEM }),
  transition_node_to_trusted: (c) => ({
    node_id: c.nodeId,
    valid_from: new Date().toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z",
  }),
  remove_node: (c) => ({ node_id: c.nodeId }),
  set_node_data: (c) => ({ node_id: c.nodeId, node_data: {} }),
  add_virtual_measurement: () => ({ measurement: "" }),
  remove_virtual_measurement: () => ({ measurement: "" }),
  add_virtual_host_data: () => ({ host_data: "" }),
  remove_virtual_host_data: () => ({ host_data: "" }),
  set_registry_chaincode: () => ({
    chaincode_id: "cc1",
    version: "<expected measurement>",
    sequence: 1,
    platforms: ["Insecure_Virtual"],
  }),
  remove_registry_chaincode: () => ({ chaincode_id: "cc1" }),
  revoke_registry_enclave: () => ({ chaincode_id: "cc1", enclave_id: "<enclave id>" }),
  set_js_app: () => ({ bundle: { metadata: { endpoints: {} }, modules: [] } }),
  set_js_runtime_options: () => ({
    max_heap_bytes: 104857600,
    max_stack_bytes: 1048576,
    max_execution_time_ms: 1000,
  }),
};

/** The action names of a constitution's source, in order, each once. */
export function actionNames(constitution: string): string[] {
  // `["name", new Action(` in the actions map, or `actions.set("name", new Action(` after it.
  const entry = /(?:\[|actions\.set\()\s*"([a-z0-9_]+)",\s*new Action\(/g;
  const names = [...constitution.matchAll(entry)].map((m) => m[1]!);
  return [...new Set(names)];
}

/** The proposal body of one action, as pretty JSON for the editor. */
export function proposalTemplate(action: string, context: TemplateContext): string {
  const args = KNOWN[action]?.(context) ?? {};
  return JSON.stringify({ actions: [{ name: action, args }] }, null, 2);
}
