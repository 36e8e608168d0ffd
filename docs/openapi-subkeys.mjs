// Sub-keys (issue 25): `/v1/keys` in the OpenAPI document, added by docs/openapi.mjs. The rules:
// docs/accounts.md#sub-keys; the code: core/src/subkeys.rs.
export function addSubKeyRoutes({ paths, schemas, h }) {
  const { ref, obj, str, num, int, nullable, get, post, keyPath } = h;
  const errs = [400, 401, 403, 429, 503];
  const cap = (what) => nullable(num(`${what} (credits; null: no cap)`));
  const money = (d) => obj({ today: num(""), this_month: num(""), total: num(""), held: num("") }, ["today", "this_month", "total", "held"], { description: d });
  const view = {
    models: nullable({ type: "array", items: str(""), description: "Allowed models (`<provider>/<model>`); null: every model." }),
    caps: obj({ daily: cap("Per UTC day"), monthly: cap("Per UTC month"), total: cap("In total") }, ["daily", "monthly", "total"]),
    spend: money("Credits spent today, this month, in total, and held by its calls in flight."),
    spend_mc: obj({ today: int(""), this_month: int(""), total: int(""), held: int("") }, [], { description: "The same in millicredits." }),
    remaining: obj({ daily: nullable(num("")), monthly: nullable(num("")), total: nullable(num("")) }, [], { description: "What each cap leaves (null: no cap)." }),
  };
  const row = {
    id: str(""), name: str(""), status: str("", { enum: ["active", "revoked"] }), plan: str(""),
    created_ms: nullable(int("")), last_used_ms: nullable(int("")), rotated_ms: nullable(int("")), ...view,
  };
  Object.assign(schemas, {
    SubKey: obj(row, ["id", "name", "status", "plan", "caps", "spend"]),
    SubKeys: obj({ account_key_id: str(""), max_sub_keys: int(""), count: int(""), keys: { type: "array", items: ref("SubKey") } }, ["account_key_id", "keys"]),
    CreateSubKeyRequest: obj({
      name: str("1 to 100 characters.", { maxLength: 100 }),
      plan: str("A plan of RATE_LIMITS no higher than the account's on any route class (default: the account's)."),
      daily_cap: nullable(num("Credits per UTC day, ≥ 0.", { minimum: 0 })), monthly_cap: nullable(num("Credits per UTC month, ≥ 0.", { minimum: 0 })),
      total_cap: nullable(num("Credits in total, ≥ 0.", { minimum: 0 })),
      models: { type: "array", items: str("A model id of /v1/models."), minItems: 1, maxItems: 100 },
    }, ["name"], { additionalProperties: false, description: "Any other field, a cap below zero, a model not sold or a plan above the account's: 400 naming the field (`error.param`)." }),
    CreatedSubKey: obj({ ...row, api_key: str("Shown once."), account_key_id: str(""), note: str("") }, ["id", "api_key", "account_key_id"]),
    SubKeyOp: obj({ id: str(""), status: str(""), api_key: str("The new key, shown once (rotate)."), note: str("") }, ["id"]),
  });
  const desc = "With the account key only (a sub-key gets 403). See docs/accounts.md.";
  paths["/v1/keys"] = {
    ...get("listSubKeys", "The account's sub-keys with their caps and spend", "Account", "SubKeys", { security: [{ bearerKey: [] }], errs, description: desc }),
    ...post("createSubKey", "Create a sub-key (shown once) spending the account's balance within its caps", "Account", "CreatedSubKey", {
      security: [{ bearerKey: [] }], errs: [...errs, 413], status: 201, reqSchema: "CreateSubKeyRequest",
      example: { name: "ci", daily_cap: 5, total_cap: 100, models: ["openai/gpt-4o-mini"] }, description: `${desc} At most 100 active sub-keys per account.` }),
  };
  paths["/v1/keys/{key_id}/revoke"] = { ...keyPath, ...post("revokeSubKey", "Revoke a sub-key (its account is untouched)", "Account", "SubKeyOp", { security: [{ bearerKey: [] }], errs: [...errs, 404], description: desc }) };
  paths["/v1/keys/{key_id}/rotate"] = { ...keyPath, ...post("rotateSubKey", "Rotate a sub-key: a new plaintext, the same caps and spend", "Account", "SubKeyOp", { security: [{ bearerKey: [] }], errs: [...errs, 404], description: desc }) };
}
