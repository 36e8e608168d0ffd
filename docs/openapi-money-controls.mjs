// Issue 24's money controls in the OpenAPI document: `Idempotency-Key` and `X-Max-Credits` on every
// metered route, their 409/422 answers and the 402 of a cap, the replay header, and the quote's cap.
// Applied to the paths docs/openapi.mjs and docs/openapi-clients.mjs built (docs/money-controls.md).

/** Every metered route (`broker_core::quote::metered`), as the paths name them. */
export const METERED_PATHS = [
  "/v1/chat", "/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/embeddings",
  "/v1/images/generations", "/v1/image", "/v1/audio/speech", "/v1/tts", "/v1/music",
  "/v1beta/models/{model}:generateContent", "/v1beta/models/{model}:streamGenerateContent",
  "/v1/models/{model}:generateContent", "/v1/models/{model}:streamGenerateContent",
];

export function addMoneyControls({ paths, components }) {
  const hdr = (name) => ({ $ref: `#/components/headers/${name}` });
  components.parameters.IdempotencyKey = {
    name: "Idempotency-Key", in: "header", required: false,
    description: "1 to 255 visible ASCII characters, scoped to the API key, kept 24 h. A retry with the same key and the same route and body never runs or charges again: it gets the first call's answer (`Idempotent-Replayed: true`, the first `X-Request-Id`) when that was a whole answer of at most 256 KiB, else a 409 naming the first call's request id and charge. In flight: 409 with `Retry-After`. Another body: 422. A call refused before the provider (400, 402, 429, 503) or by it (nothing charged) leaves the key unused.",
    schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x21-\\x7E]+$" }, example: "order-1042-attempt",
  };
  components.parameters.MaxCredits = {
    name: "X-Max-Credits", in: "header", required: false,
    description: "The most this call may hold and be charged, in credits (above 0, at most 3 decimals). Without `max_tokens` the output cap is lowered to fit; a call whose least hold is above it (a `max_tokens` given, an image, speech, music, embeddings) is a 402 `over_max_credits` with nothing held. The charge never exceeds it. The body field `max_credits` (top level of the JSON body, every metered route; never forwarded) does the same; with both, the smaller applies.",
    schema: { type: "string", pattern: "^[0-9]+(\\.[0-9]{1,3})?$" }, example: "0.5",
  };
  components.headers["Idempotent-Replayed"] = { description: "`true` on an answer replayed for a retried Idempotency-Key (its X-Request-Id is the first call's).", schema: { type: "string", enum: ["true"] } };
  const requestId = { "X-Request-Id": hdr("X-Request-Id") };
  for (const path of METERED_PATHS) {
    const op = paths[path]?.post;
    if (!op) throw new Error(`openapi: no POST ${path} to add the money controls to`);
    op.parameters = [...(op.parameters ?? []), { $ref: "#/components/parameters/IdempotencyKey" }, { $ref: "#/components/parameters/MaxCredits" }];
    const errorContent = op.responses["400"].content;
    op.responses["200"].headers = { ...op.responses["200"].headers, "Idempotent-Replayed": hdr("Idempotent-Replayed") };
    op.responses["402"] = { ...op.responses["402"], description: "The balance cannot cover the worst case of the call (`insufficient_credits`: `credits_required`, `credits_available`), or its spending cap cannot (`over_max_credits`: `credits_required`, `max_credits`); nothing held." };
    op.responses["409"] = {
      description: "`idempotency_in_flight`: a call with this Idempotency-Key is in flight (retry after `Retry-After`); `idempotency_key_used`: it finished with an answer that is not kept (streamed, or over 256 KiB): `idempotent_request_id` and `credits_charged` name it (GET /v1/requests/{id}). Nothing charged.",
      headers: { ...requestId, "Retry-After": hdr("Retry-After") }, content: errorContent,
    };
    op.responses["422"] = { description: "`idempotency_key_reused`: this Idempotency-Key was used with another route or body. Nothing run or charged.", headers: requestId, content: errorContent };
  }
  const quote = paths["/v1/quote"]?.post;
  if (!quote) throw new Error("openapi: no POST /v1/quote");
  quote.parameters = [...(quote.parameters ?? []), { $ref: "#/components/parameters/MaxCredits" }];
  const s = components.schemas;
  s.QuoteRequest.properties.max_credits = { anyOf: [{ type: "number" }, { type: "string" }, { type: "null" }], description: "The call's spending cap (credits), as X-Max-Credits would set it; the body's own `max_credits` counts too (the smallest applies)." };
  Object.assign(s.Quote.properties, {
    max_credits: { anyOf: [{ type: "number" }, { type: "null" }], description: "The cap quoted for (credits), or null." },
    max_credits_mc: { anyOf: [{ type: "integer" }, { type: "null" }] },
    refusal: { anyOf: [{ type: "string", enum: ["insufficient_credits", "over_max_credits", "sub_key_cap_reached"] }, { type: "null" }], description: "Why the call would be refused (a 402), when `admitted` is false." },
    sub_key_room_credits: { anyOf: [{ type: "number" }, { type: "null" }], description: "A sub-key's call: the least room its caps leave (credits); null for an account key." },
    sub_key_room_cap: { anyOf: [{ type: "string", enum: ["daily_cap", "monthly_cap", "total_cap"] }, { type: "null" }], description: "Which cap leaves that room." },
  });
}
