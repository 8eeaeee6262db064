// The JS twin of the built-in logging app's private records (src/apps/logging.ts), for
// `npm run bench -- --app js`: the same map ("records"), the same encoding (key: the id as JSON,
// value: the message as JSON), the same answers (true for a write, {msg} for a read, CCF's
// error codes otherwise). Its endpoints reuse one interpreter (interpreter_reuse), as CCF's own
// JS logging sample does, so the module below is evaluated once per node and app version.
const records = ccf.kv["records"];
const ID = /^(0|[1-9][0-9]{0,15})$/;

function error(statusCode, code, message) {
  return { statusCode, body: { error: { code, message } } };
}

function idOf(value) {
  const text = typeof value === "number" ? String(value) : value;
  if (typeof text !== "string" || !ID.test(text) || !Number.isSafeInteger(Number(text))) {
    return undefined;
  }
  return text;
}

export function postPrivate(request) {
  let body;
  try {
    body = request.body.json();
  } catch (e) {
    return error(400, "InvalidInput", "Request body is not valid JSON.");
  }
  const id = idOf(body === null || typeof body !== "object" ? undefined : body.id);
  if (id === undefined || typeof body.msg !== "string") {
    return error(400, "InvalidInput", "Invalid request body: expected {id: u64, msg: string}");
  }
  records.set(ccf.strToBuf(id), ccf.strToBuf(JSON.stringify(body.msg)));
  return { body: true };
}

export function getPrivate(request) {
  const match = /(?:^|&)id=([^&]*)/.exec(request.query);
  const id = idOf(match === null ? undefined : decodeURIComponent(match[1]));
  if (id === undefined) {
    return error(400, "InvalidQueryParameterValue", "Missing or invalid query parameter 'id'.");
  }
  const value = records.get(ccf.strToBuf(id));
  if (value === undefined) return error(404, "ResourceNotFound", `No such record: ${id}.`);
  return { body: { msg: JSON.parse(ccf.bufToStr(value)) } };
}
