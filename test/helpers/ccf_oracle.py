"""Checks Consortia's ledger, snapshot and receipts with CCF 6.0.17's own Python package.

The driver of test/e2e/ccf-oracle.test.ts. It is Consortia's code: it calls only the oracle's
public API (ccf.ledger, ccf.cose, and the verify_receipt() CCF's end-to-end tests use), the way
an auditor would, and reports what CCF's code said. The oracle itself is never copied here.

Run with the oracle on the path (see /work/shared/oracles/ccf-python/README.md):
    PYTHONPATH=$O:$O/vendor python3 test/helpers/ccf_oracle.py < plan.json
The plan is {"checks": [{"kind": ..., "name": ..., ...}, ...]}. Every check runs, whatever the
others do; the answer, on stdout, is {"results": [{"name", "ok", "error"?, "info"?}, ...]}, in
plan order. "error" is the oracle's exception (type, message and the line that raised it).

Kinds:
  read       {"dir"}: every committed chunk, entry and public table, without the validator;
             info: chunk names, entry count, table names, and every write to a public
             "public:records*" table as [table, key hex, value hex or null, seqno].
  validate   {"dir"}: LedgerValidator over every committed chunk, in order; info: chunks,
             entries, signatures, last verified txid; error names the entry it failed on.
  snapshot   {"file"}: ccf.ledger.Snapshot (which verifies the receipt appended to it), then
             every public table; info: seqno and {table: key count}, plus public:records* as
             for read.
  snapshot_receipt {"file", "service_cert"}: the JSON receipt appended to a snapshot file,
             through verify_receipt().
  json_receipt {"file", "service_cert", "claims"?, "generic"?, "signature_tx"?}: verify_receipt()
             on a JSON receipt; "claims" is the UTF-8 text whose SHA-256 is the claims digest.
  cose_receipt {"file", "service_cert", "claims_digest"}: ccf.cose.verify_receipt() on a
             COSE_Sign1 receipt against the service key; claims_digest in hex.
"""

import json
import os
import sys
import traceback

import ccf.cose
import ccf.ledger
from ccf_tests.e2e_logging_verify_receipt import verify_receipt
from cryptography.x509 import load_pem_x509_certificate

RECORDS_PREFIX = "public:records"
# A ledger entry's header: u8 version, u8 flags, u48 little-endian size of what follows.
ENTRY_HEADER_BYTES = 8


class Located(Exception):
    """An oracle exception already described, with the entry it was raised on."""


def describe(error):
    """The exception as one line: type, message, and where in the oracle it was raised."""
    if isinstance(error, Located):
        return str(error)
    kind = type(error)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    # One line: CCF's messages often span several.
    message = " ".join(str(error).split()) or "(no message)"
    frames = traceback.extract_tb(error.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" [raised at {os.path.basename(last.filename)}:{last.lineno}: {last.line}]"
    return f"{name}: {message}{where}"


def record_writes(tables, seqno):
    """The writes to public:records* tables, as JSON-friendly rows."""
    rows = []
    for name, writes in tables.items():
        if not name.startswith(RECORDS_PREFIX):
            continue
        for key, value in writes.items():
            rows.append([name, key.hex(), None if value is None else value.hex(), seqno])
    return rows


def read(check):
    chunks, entries, tables, records = [], 0, set(), []
    for chunk in ccf.ledger.Ledger([check["dir"]]):
        chunks.append(os.path.basename(chunk.filename()))
        for tx in chunk:
            entries += 1
            domain = tx.get_public_domain()
            public_tables = domain.get_tables()
            tables.update(public_tables.keys())
            records.extend(record_writes(public_tables, domain.get_seqno()))
    return {"chunks": chunks, "entries": entries, "tables": sorted(tables), "records": records}


def validate(check):
    validator = ccf.ledger.LedgerValidator()
    chunks, entries = [], 0
    for chunk in ccf.ledger.Ledger([check["dir"]]):
        name = os.path.basename(chunk.filename())
        chunks.append(name)
        for tx in chunk:
            try:
                validator.add_transaction(tx)
            except Exception as error:
                raise Located(f"entry {tx.get_txid()} of {name}: {describe(error)}")
            entries += 1
    return {
        "chunks": chunks,
        "entries": entries,
        "signatures": validator.signature_count,
        "last_verified": str(validator.last_verified_txid()),
    }


def snapshot(check):
    snap = ccf.ledger.Snapshot(check["file"])
    domain = snap.get_public_domain()
    tables = domain.get_tables()
    return {
        "seqno": domain.get_seqno(),
        "tables": {name: len(writes) for name, writes in tables.items()},
        "records": record_writes(tables, domain.get_seqno()),
    }


def load_cert(path):
    with open(path, "rb") as f:
        return load_pem_x509_certificate(f.read())


def snapshot_receipt(check):
    with open(check["file"], "rb") as f:
        data = f.read()
    size = int.from_bytes(data[2:ENTRY_HEADER_BYTES], "little")
    receipt = json.loads(data[ENTRY_HEADER_BYTES + size :].decode("utf-8"))
    verify_receipt(receipt, load_cert(check["service_cert"]))
    return {"node_id": receipt.get("node_id")}


def json_receipt(check):
    with open(check["file"], "r", encoding="utf-8") as f:
        receipt = json.load(f)
    claims = check.get("claims")
    verify_receipt(
        receipt,
        load_cert(check["service_cert"]),
        claims=None if claims is None else claims.encode("utf-8"),
        generic=check.get("generic", True),
        is_signature_tx=check.get("signature_tx", False),
    )
    return {"node_id": receipt.get("node_id")}


def cose_receipt(check):
    with open(check["file"], "rb") as f:
        receipt = f.read()
    key = load_cert(check["service_cert"]).public_key()
    phdr = ccf.cose.verify_receipt(receipt, key, bytes.fromhex(check["claims_digest"]))
    return {"protected_header": {str(k): repr(v) for k, v in phdr.items()}}


KINDS = {
    "read": read,
    "validate": validate,
    "snapshot": snapshot,
    "snapshot_receipt": snapshot_receipt,
    "json_receipt": json_receipt,
    "cose_receipt": cose_receipt,
}


def run(check):
    try:
        return {"name": check["name"], "ok": True, "info": KINDS[check["kind"]](check)}
    except Exception as error:
        return {"name": check["name"], "ok": False, "error": describe(error)}


def main():
    plan = json.load(sys.stdin)
    results = [run(check) for check in plan["checks"]]
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
