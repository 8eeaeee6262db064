/**
 * Client-side TLS settings shared by the node's own HTTPS calls to other nodes.
 */

/**
 * TLS options of a node calling another node's rpc interface (joins, snapshot fetches): it
 * presents its node certificate and accepts a server whose chain ends at the service
 * certificate, whatever name it answers to (the chain is the identity check; a published
 * address need not be among the server certificate's SANs).
 */
export function nodeClientTls(o: {
  readonly serviceCertPem: string;
  readonly nodeCertPem: string;
  readonly nodeKeyPem: string;
}) {
  return {
    ca: o.serviceCertPem,
    cert: o.nodeCertPem,
    key: o.nodeKeyPem,
    rejectUnauthorized: true,
    checkServerIdentity: () => undefined,
  };
}
