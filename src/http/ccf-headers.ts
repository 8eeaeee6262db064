/** HTTP headers with a meaning in CCF's API. */

/** On every answer of a node: the transaction it reflects ("view.seqno"). */
export const TXID_HEADER = "x-ms-ccf-transaction-id";
