// Consortia default constitution: apply. Runs read-write once a proposal is Accepted: each action
// in order; an exception fails the proposal and discards every write.
export function apply(proposal, proposalId) {
  for (const action of JSON.parse(proposal).actions) {
    actions.get(action.name).apply(action.args ?? {}, proposalId);
  }
}
