// Consortia default constitution: validate. Runs read-only when a proposal is created; every
// action must exist and its arguments pass its validate function.
export function validate(input) {
  const proposal = JSON.parse(input);
  if (!Array.isArray(proposal.actions)) {
    return { valid: false, description: "proposal must have an actions array" };
  }
  const errors = [];
  proposal.actions.forEach((action, position) => {
    const definition = actions.get(action.name);
    if (definition === undefined) {
      errors.push(`${action.name}: no such action`);
      return;
    }
    try {
      definition.validate(action.args ?? {});
    } catch (e) {
      errors.push(`${action.name} at position ${position} failed validation: ${e.message}`);
    }
  });
  return { valid: errors.length === 0, description: errors.join(", ") };
}
