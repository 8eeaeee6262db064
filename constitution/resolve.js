// Consortia default constitution: resolve. Runs read-only after every ballot: a proposal is
// Accepted once a strict majority of active members voted for it, and stays Open otherwise (as
// CCF's default constitution, it never returns Rejected).
export function resolve(proposal, proposerId, votes, proposalId) {
  let activeMembers = 0;
  ccf.kv["public:ccf.gov.members.info"].forEach((value) => {
    if (ccf.bufToJsonCompatible(value).status === "Active") activeMembers++;
  });
  const votesFor = votes.filter((v) => v.vote === true).length;
  return votesFor > Math.floor(activeMembers / 2) ? "Accepted" : "Open";
}
