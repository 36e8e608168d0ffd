// The OpenAPI 3.1 description of every route of the worker. `node scripts/build-docs.mjs` writes it
// to public/openapi.json (committed; a test fails when it is stale). The route table it must match
// is core/src/routes.rs (checked both ways by `cargo test -p broker-core` and tests/openapi.test.mjs).
import { addClientRoutes } from "./openapi-clients.mjs";
import { addMoneyControls } from "./openapi-money-controls.mjs";
import { addSubKeyRoutes } from "./openapi-subkeys.mjs";
import { addAlertRoutes, describeTopupEvents } from "./openapi-alerts.mjs";

const ref = (name) => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties, required = [], extra = {}) => ({ type: "object", properties, required, ...extra });
const str = (description, extra = {}) => ({ type: "string", description, ...extra });
const num = (description, extra = {}) => ({ type: "number", description, ...extra });
const int = (description, extra = {}) => ({ type: "integer", description, ...extra });
const nullable = (schema) => ({ anyOf: [schema, { type: "null" }] });
const credits = (description) => num(`${description} (credits; 1 credit = USD_PER_CREDIT)`);

const KEY_ID = "key_0123456789abcdef";

// Headers on every answer, and on metered answers (docs/api.md, "Headers").
const requestIdHeader = { "X-Request-Id": { $ref: "#/components/headers/X-Request-Id" } };
const meteredHeaders = {
  ...requestIdHeader,
  ...Object.fromEntries(["X-Credits-Charged", "X-Credits-Remaining", "X-Credits-Held", "RateLimit", "RateLimit-Policy", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
    .map((h) => [h, { $ref: `#/components/headers/${h}` }])),
};

const ERROR_TEXT = {
  400: "Bad request: malformed JSON, bad media input, a field outside the route's allowlist, an unknown or retired model, or the provider refused the request.",
  401: "Missing, unknown or revoked key (or a wrong secret).",
  402: "The balance cannot cover the worst case of the call (`credits_required`, `credits_available`), or a sub-key's cap cannot (`code: sub_key_cap_reached`).",
  403: "The key's plan has no configured limit, the RapidAPI subscription is not mapped, a sub-key may not use the model, or a sub-key asked for what only its account may do.",
  404: "No such route or resource.",
  405: "The path exists, the method does not.",
  413: "The body is over MAX_BODY_BYTES (webhooks: MAX_WEBHOOK_BYTES).",
  429: "Rate limited (plan limit, key guessing per client IP, admin brute force); see Retry-After.",
  502: "The provider failed or broke off; the message says what was charged.",
  503: "Redis unreachable, a secret missing or a setting malformed: fail closed.",
  504: "The provider did not answer within UPSTREAM_TIMEOUT_MS.",
};
const SHAPE_SCHEMA = { native: "NativeError", openai: "OpenAiError", anthropic: "AnthropicError" };

/** The error answers of a route, in the route's shape. */
function errors(shape, statuses) {
  return Object.fromEntries(statuses.map((s) => [String(s), {
    description: ERROR_TEXT[s],
    headers: s === 429 ? { ...requestIdHeader, "Retry-After": { $ref: "#/components/headers/Retry-After" } } : requestIdHeader,
    content: { "application/json": { schema: ref(SHAPE_SCHEMA[shape]) } },
  }]));
}

const json = (schema, description, headers = requestIdHeader, example) => ({
  description, headers, content: { "application/json": { schema, ...(example ? { example } : {}) } },
});
const body = (schema, example, required = true) => ({ required, content: { "application/json": { schema, example } } });

// ---------- schemas ----------
const textMessage = obj({ role: str("", { enum: ["system", "user", "assistant"] }), content: str("Text content.") }, ["role", "content"]);
const usage = obj({
  input_tokens: int("Prompt tokens billed at the input rate."), output_tokens: int("Output tokens (thinking included)."),
  cached_input_tokens: int("Prompt tokens read from the provider's cache."), cache_write_tokens: int("Prompt tokens written to the cache."),
}, ["input_tokens", "output_tokens"]);
const xBroker = obj({ credits_charged: nullable(num("")), credits_remaining: nullable(num("")), request_id: str(""), billed_by: str("`rapidapi` on the RapidAPI channel.") }, ["request_id"]);

const schemas = {
  NativeError: obj({
    error: obj({ type: str("Machine-readable error type.", { examples: ["invalid_request"] }), message: str("What went wrong."), request_id: str("The request id (as X-Request-Id).") }, ["type", "message"]),
  }, ["error"], { description: "The gateway's own error shape (every route but the OpenAI- and Anthropic-compatible ones)." }),
  OpenAiError: obj({
    error: obj({ message: str(""), type: str(""), param: nullable(str("")), code: nullable(str("")) }, ["message", "type"]),
  }, ["error"], { description: "OpenAI's error shape (/v1/chat/completions, /v1/responses, /v1/models)." }),
  AnthropicError: obj({
    type: { const: "error" }, error: obj({ type: str(""), message: str("") }, ["type", "message"]), request_id: str(""),
  }, ["type", "error"], { description: "Anthropic's error shape (/v1/messages)." }),
  NativeChatRequest: obj({
    provider: str("", { enum: ["openai", "anthropic", "google"] }), model: str("A model of /v1/models, without the provider prefix."),
    messages: { type: "array", items: textMessage, minItems: 1 }, max_tokens: int("Output bound; default: the most the balance covers.", { minimum: 1 }),
    temperature: num(""), top_p: num(""), stop: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }] }, stream: { type: "boolean" },
  }, ["provider", "model", "messages"], { additionalProperties: false }),
  NativeChatResponse: obj({
    id: str(""), provider: str(""), model: str(""), content: str("The answer."), finish_reason: nullable(str("")), usage,
    credits_charged: num("Credits this call cost."), credits_remaining: num("Spendable credits after it."), billed_by: str("`rapidapi` on the RapidAPI channel (no credit figures)."), request_id: str(""),
  }, ["id", "provider", "model", "content", "usage", "request_id"]),
  OpenAiChatRequest: obj({
    model: str("`openai/…`, `anthropic/…`, `google/…` or a bare OpenAI model."), messages: { type: "array", items: { type: "object" }, minItems: 1 },
    max_tokens: int("", { minimum: 1 }), max_completion_tokens: int("", { minimum: 1 }), temperature: num(""), top_p: num(""), stream: { type: "boolean" },
    stream_options: obj({ include_usage: { type: "boolean" } }), n: { const: 1 },
  }, ["model", "messages"], { description: "OpenAI's Chat Completions request; each provider accepts a fixed list of fields (docs/api.md in the repository); any other is a 400 naming it, before anything is held." }),
  OpenAiChatResponse: obj({
    id: str(""), object: { const: "chat.completion" }, created: int(""), model: str(""),
    choices: { type: "array", items: obj({ index: int(""), message: obj({ role: str(""), content: nullable(str("")) }, ["role"]), finish_reason: nullable(str("")) }, ["index", "message"]) },
    usage: obj({ prompt_tokens: int(""), completion_tokens: int(""), total_tokens: int("") }, ["prompt_tokens", "completion_tokens"]), x_broker: xBroker,
  }, ["id", "object", "model", "choices"]),
  AnthropicMessagesRequest: obj({
    model: str("An Anthropic model of /v1/models, without the prefix."), max_tokens: int("", { minimum: 1 }), messages: { type: "array", items: { type: "object" }, minItems: 1 },
    system: { anyOf: [{ type: "string" }, { type: "array" }] }, stream: { type: "boolean" }, temperature: num(""), top_p: num(""), top_k: int(""),
    stop_sequences: { type: "array", items: { type: "string" } }, metadata: { type: "object" },
  }, ["model", "max_tokens", "messages"], { description: "Anthropic's Messages request (a fixed list of fields, docs/api.md in the repository; any other is a 400 naming it)." }),
  AnthropicMessagesResponse: obj({
    id: str(""), type: { const: "message" }, role: { const: "assistant" }, model: str(""), content: { type: "array", items: { type: "object" } },
    stop_reason: nullable(str("")), usage: obj({ input_tokens: int(""), output_tokens: int("") }, ["input_tokens", "output_tokens"]), x_broker: xBroker,
  }, ["id", "type", "role", "content", "usage"]),
  Balance: obj({
    credits: credits("Spendable now; negative is a debt"), millicredits: int(""), held_credits: credits("Held by calls in flight"), held_millicredits: int(""),
    key_id: str(""), plan: str(""), usd_per_credit: str(""), debt_credits: credits("The debt, when credits < 0"), note: str(""),
    sub_key: { type: "object", description: "A sub-key's caps, spend and what is left (its balance is its account's). See docs/accounts.md." },
  }, ["credits", "millicredits", "held_credits", "held_millicredits", "key_id", "plan", "usd_per_credit"]),
  LedgerEntry: obj({
    type: str("", { examples: ["call", "correction", "grant", "adjustment", "topup", "refund", "dispute", "dispute_won", "dispute_lost", "import"] }), credits: num(""), amount_mc: int("Signed amount, millicredits."),
    balance_mc: int("Running total (spendable + held)."), ts: int("Unix ms."),
  }, ["type", "amount_mc"]),
  Ledger: obj({
    key_id: str(""), credits: num(""), held_credits: num(""), carried_credits: num("Sum of entries older than the kept ones."), carried_mc: int(""),
    total: int(""), offset: int(""), limit: int(""), next_offset: nullable(int("")), entries: { type: "array", items: ref("LedgerEntry") },
  }, ["key_id", "credits", "held_credits", "carried_credits", "total", "entries"]),
  Model: obj({ id: str("`provider/model`."), credits_per_million_tokens: { type: "object", additionalProperties: { type: "number" } } }, ["id"]),
  Models: obj({ object: { const: "list" }, price_table: str("Version of the price table."), data: { type: "array", items: ref("Model") } }, ["object", "price_table", "data"]),
  QuoteRequest: obj({
    route: str("A metered route (`/v1/chat`, `/v1/chat/completions`, `/v1/messages`, `/v1/responses`, `/v1/embeddings`, `/v1/images/generations`, `/v1/image`, `/v1/audio/speech`, `/v1/tts`, `/v1/music`, `/v1beta/models/{model}:generateContent`, …)."),
    body: { type: "object", description: "The call's JSON body, exactly as it would be sent to `route`." },
    balance: nullable(credits("Quote for this balance instead of the key's (at least 0, at most 3 decimals)")),
  }, ["route", "body"]),
  Quote: obj({
    object: str("", { enum: ["quote"] }), route: str(""), provider: str(""), model: str(""), product: str(""),
    admitted: { type: "boolean", description: "Whether admission would take the call at this balance." },
    hold_credits: nullable(credits("The hold admission would take (null: the balance covers no rung, a 402)")), hold_mc: nullable(int("")),
    output_cap: nullable(int("The output units (tokens) admission would grant (the call's own cap when it set one).")),
    output_cap_chosen_by_admission: { type: "boolean", description: "true when the call set no `max_tokens`: admission picks the largest cap the balance covers." },
    max_hold_credits: credits("The hold at the full output cap"), max_hold_mc: int(""), max_output_cap: int(""),
    min_hold_credits: credits("The least balance admission accepts"), min_hold_mc: int(""),
    balance_credits: credits("The balance quoted for"), balance_mc: int(""), balance_from: str("", { enum: ["key", "request"] }),
    prices: nullable({ type: "object", description: "The model's entry of /v1/models: its prices per unit in credits." }),
  }, ["object", "route", "provider", "model", "admitted", "hold_mc", "output_cap", "max_hold_mc", "min_hold_mc", "balance_mc"]),
  RequestBill: obj({
    object: str("", { enum: ["request"] }), id: str("The call's request id (its `X-Request-Id`)."),
    status: str("`held`: in flight, its hold reserved; `settled`: charged (or corrected after a sweep); `swept`: no settlement came, the sweeper charged the hold; `released`: not served, nothing charged.", { enum: ["held", "settled", "swept", "released"] }),
    provider: nullable(str("")), model: nullable(str("")), product: nullable(str("`chat`, `image`, `speech`, `music`, `embeddings`…")),
    units: nullable({ description: "The units metered (as in the call's ledger entry)." }), exact: nullable({ type: "boolean", description: "true: the provider's reported usage; false: the bound (null while held)." }),
    held_credits: credits("The hold admission reserved"), held_mc: int(""), charged_credits: nullable(credits("Charged (null while held)")), charged_mc: nullable(int("")),
    admitted_ts: nullable(int("Admission, ms since the epoch (calls settled before this field existed: null)")), settled_ts: nullable(int("Settlement, ms")), corrected_ts: nullable(int("A late exact settlement that corrected a sweep, ms")),
    note: nullable(str("")),
  }, ["object", "id", "status", "held_credits", "held_mc", "charged_credits", "charged_mc"]),
  DailyUsage: obj({ days: { type: "array", items: obj({ day: str("YYYY-MM-DD"), models: { type: "array", items: { type: "object" } }, totals: { type: "object" } }, ["day"]) } }, ["days"]),
  Plans: obj({
    plans: { type: "array", items: obj({ name: str(""), monthly_credits: num(""), rate_plan: str("") }, ["name"]) },
    credit_pack: obj({ min_usd: num(""), max_usd: num(""), usd_per_credit: str("") }),
  }, ["plans", "credit_pack"]),
  CheckoutRequest: obj({
    credits: num("A credit pack of this many credits."), amount_usd: num("Or a pack of this many dollars."), plan: str("Or a subscription of SUBSCRIPTION_PLANS."),
    success_url: str("https:// (or http://localhost)", { format: "uri" }), cancel_url: str("", { format: "uri" }),
  }, ["success_url", "cancel_url"]),
  CheckoutSession: obj({ id: str(""), url: str(""), mode: str("", { enum: ["payment", "subscription"] }), credits: num(""), amount_usd: num(""), plan: str(""), key_id: str("") }, ["id", "url", "key_id"]),
  BillingPortalRequest: obj({ return_url: str("", { format: "uri" }) }, ["return_url"]),
  Url: obj({ url: str("") }, ["url"]),
  RotatedOwnKey: obj({ key_id: str(""), api_key: str("The new key, shown once."), note: str("") }, ["key_id", "api_key"]),
  Health: obj({ status: str("", { enum: ["ok", "degraded"] }), services: { type: "object" }, version: str(""), price_table: str("") }, ["status"]),
  WebhookAck: obj({
    received: { const: true }, credited: { type: "boolean" }, duplicate: { type: "boolean", description: "Already handled; nothing changed." },
    pending: { type: "boolean", description: "A refund or dispute of a payment not credited yet: remembered, applied when it is." },
    credits_added: num(""), credits_taken_back: num("A refund's or reversal's share."), credits_after: num(""),
    dispute: str("What a dispute step did.", { enum: ["frozen", "released", "lost"] }), credits_moved: num("Frozen or lost (negative), released (positive)."),
  }, ["received"]),
  AddCreditsRequest: obj({ apiKey: str("A plaintext key or a key id."), credits: num(""), reason: str("") }, ["apiKey", "credits"]),
  Grant: obj({ key_id: str(""), credits_added: num(""), credits: num(""), reason: str("") }, ["key_id", "credits"]),
  ImportKeysRequest: obj({ cursor: { anyOf: [{ type: "string", pattern: "^[0-9]{1,20}$" }, { type: "integer", minimum: 0 }], description: "`next_cursor` of the previous page (default 0)." }, count: int("Page size (default 200).", { minimum: 1, maximum: 1000 }) }),
  ImportKeys: obj({ imported: { type: "array" }, skipped: { type: "array" }, next_cursor: nullable({ anyOf: [{ type: "string" }, { type: "integer" }] }) }, ["imported", "skipped"]),
  CreateKeyRequest: obj({ name: str("1-200 characters."), plan: str("A RATE_LIMITS plan (default DEFAULT_PLAN)."), credits: num("Initial credits."), reason: str("") }, ["name"]),
  CreatedKey: obj({ id: str(""), api_key: str("Shown once."), name: str(""), plan: str(""), credits: num(""), note: str("") }, ["id", "api_key", "plan", "credits"]),
  AdminKey: { allOf: [ref("Balance"), obj({ id: str(""), name: str(""), status: str(""), charged_total_credits: num(""), created_ms: nullable(int("")), last_used_ms: nullable(int("")), ledger_entries: int("") }, ["id", "status"])] },
  GrantRequest: obj({ credits: num("Signed; not zero."), reason: str("1-500 characters; lands in the ledger.") }, ["credits", "reason"]),
  KeyOp: obj({ id: str(""), api_key: str("rotate: the new key, shown once."), status: str("revoke: `revoked`."), note: str("") }, ["id"]),
  Stats: obj({ days: { type: "array", items: { type: "object" } }, totals: { type: "object" }, usd_per_credit: str(""), scope: str("") }, ["days", "totals"]),
  Unmatched: obj({ count: int(""), entries: { type: "array", items: { type: "object" } } }, ["count", "entries"]),
};

// ---------- operations ----------
const bearer = [{ bearerKey: [] }, { rapidApi: [] }];
const customerErrors = [400, 401, 402, 403, 413, 429, 502, 503, 504];
const accountErrors = [400, 401, 429, 503];
const adminErrors = [400, 401, 404, 429, 503];
// One server-sent event (as schemathesis and SSE parsers see it): `data` is a JSON document of the
// route's stream format, or `[DONE]`.
const sse = (description) => ({ "text/event-stream": { schema: obj({ event: str("Event name (Anthropic's stream)."), data: str("A JSON document, or `[DONE]`."), id: str("") }, ["data"], { description }) } });

const chatOp = ({ id, summary, description, req, res, shape, example, security }) => ({
  post: {
    operationId: id, summary, description, tags: ["Chat"], security,
    requestBody: body(ref(req), example),
    responses: {
      200: { description: "The answer; with `stream: true`, server-sent events.", headers: meteredHeaders,
        content: { "application/json": { schema: ref(res) }, ...sse("SSE events in the route's own format (docs/api.md in the repository).") } },
      ...errors(shape, customerErrors),
    },
  },
});

const get = (id, summary, tag, schema, { security, errs = accountErrors, shape = "native", params, description, headers } = {}) => ({
  get: { operationId: id, summary, tags: [tag], ...(description ? { description } : {}), ...(security ? { security } : { security: [] }), ...(params ? { parameters: params } : {}),
    responses: { 200: json(ref(schema), summary, headers), ...errors(shape, errs) } },
});
const post = (id, summary, tag, schema, { security, errs, reqSchema, example, status = 200, description } = {}) => ({
  post: { operationId: id, summary, tags: [tag], ...(description ? { description } : {}), security,
    ...(reqSchema ? { requestBody: body(ref(reqSchema), example) } : {}),
    responses: { [status]: json(ref(schema), summary), ...errors("native", errs) } },
});
const q = (name, description, schema = { type: "string" }) => ({ name, in: "query", required: false, description, schema });
const admin = [{ adminSecret: [] }];
const keyPath = { parameters: [{ $ref: "#/components/parameters/KeyId" }] };
const pageParams = [q("limit", "1-200, default 50.", { type: "integer", minimum: 1, maximum: 200 }), q("offset", "Entries to skip.", { type: "integer", minimum: 0 })];

const chatMessages = [{ role: "user", content: "Say hi" }];
const paths = {
  "/health": get("health", "Liveness and Redis reachability", "Meta", "Health", { errs: [503] }),
  "/v1/chat": chatOp({ id: "chat", summary: "Chat in the gateway's own shape", shape: "native", req: "NativeChatRequest", res: "NativeChatResponse", security: bearer,
    description: "One request shape for every provider. With `stream: true`: `data: {\"type\":\"delta\",…}` events, a `done` event with usage and credits, then `data: [DONE]`.",
    example: { provider: "openai", model: "gpt-4o-mini", messages: chatMessages, max_tokens: 50 } }),
  "/v1/chat/completions": chatOp({ id: "chatCompletions", summary: "OpenAI-compatible Chat Completions", shape: "openai", req: "OpenAiChatRequest", res: "OpenAiChatResponse", security: bearer,
    description: "Works with the official OpenAI SDKs (change `base_url` and `api_key`). Anthropic and Gemini models are translated. Errors in OpenAI's shape. An OpenAI model's stream with `stream_options.include_usage` is OpenAI's bytes, byte for byte (its charge: `GET /v1/requests/{X-Request-Id}`); a translated stream's usage chunk carries `x_broker`.",
    example: { model: "openai/gpt-4o-mini", messages: chatMessages, max_tokens: 50 } }),
  "/v1/messages": chatOp({ id: "messages", summary: "Anthropic-compatible Messages", shape: "anthropic", req: "AnthropicMessagesRequest", res: "AnthropicMessagesResponse",
    security: [{ bearerKey: [] }, { anthropicKey: [] }, { rapidApi: [] }],
    description: "Works with the official Anthropic SDK (Anthropic models only). The key may come as `x-api-key`. Errors in Anthropic's shape. A stream is Anthropic's bytes, byte for byte (its charge: `GET /v1/requests/{X-Request-Id}`).",
    example: { model: "claude-haiku-4-5", max_tokens: 50, messages: chatMessages } }),
  "/v1/models": get("listModels", "Models and their prices in credits", "Account", "Models", { shape: "openai", errs: [503], description: "Public. The live price table: credits per million tokens, per class." }),
  "/v1/balance": get("getBalance", "The key's balance", "Account", "Balance", { security: bearer }),
  "/v1/usage": get("getUsage", "The key's ledger, newest first", "Account", "Ledger", { security: bearer, params: pageParams }),
  "/v1/usage/daily": get("getDailyUsage", "Credits per day and model", "Account", "DailyUsage", { security: bearer, params: [q("from", "YYYY-MM-DD (default today).", { type: "string", format: "date" }), q("to", "YYYY-MM-DD (default today).", { type: "string", format: "date" })] }),
  "/v1/requests/{request_id}": { parameters: [{ name: "request_id", in: "path", required: true, description: "The `X-Request-Id` of a metered call.", schema: { type: "string" }, example: "req_0123456789abcdef01234567" }],
    ...get("getRequestBill", "One call's bill (status, hold, charge)", "Account", "RequestBill", { security: bearer, errs: [...accountErrors, 404],
      description: "For the key that made the call; any other key (or an id never seen) gets 404. Kept as long as the ledger keeps the call's entry (`LEDGER_KEEP` per key). See docs/money-controls.md." }) },
  "/v1/quote": post("createQuote", "What a call would hold, and the output cap admission would grant", "Account", "Quote", { security: bearer, errs: [...accountErrors, 413],
    reqSchema: "QuoteRequest", example: { route: "/v1/chat/completions", body: { model: "gpt-4o-mini", messages: chatMessages } },
    description: "The call's body is parsed and priced exactly as its route would (the same 400s), and admission's choice is quoted for the key's balance or `balance`. No provider call, nothing held or charged. See docs/money-controls.md." }),
  "/v1/plans": get("listPlans", "Subscriptions and credit-pack bounds", "Billing", "Plans", { errs: [503] }),
  "/v1/checkout": post("createCheckout", "Start a Stripe Checkout (a credit pack or a subscription)", "Billing", "CheckoutSession", { security: bearer, errs: [...accountErrors, 413, 502],
    reqSchema: "CheckoutRequest", example: { credits: 2500, success_url: "https://shop.example/ok", cancel_url: "https://shop.example/back" } }),
  "/v1/billing-portal": post("createBillingPortal", "Open Stripe's Billing Portal for the key", "Billing", "Url", { security: bearer, errs: [...accountErrors, 413, 502],
    reqSchema: "BillingPortalRequest", example: { return_url: "https://shop.example/account" } }),
  "/v1/keys/rotate": post("rotateOwnKey", "Replace the calling key (same balance and ledger)", "Account", "RotatedOwnKey", { security: [{ bearerKey: [] }], errs: accountErrors }),
  "/webhooks/stripe": post("stripeWebhook", "Stripe events (checkout, invoices, subscriptions, refunds, disputes)", "Webhooks", "WebhookAck", { security: [{ stripeSignature: [] }], errs: [400, 413, 503],
    reqSchema: "StripeEvent", example: { id: "evt_1", type: "checkout.session.completed", data: { object: {} } },
    description: "Signed by Stripe (`Stripe-Signature`, HMAC-SHA256, 300 s tolerance). A bad signature is 400 and changes nothing; replays are acknowledged once. "
      + "Credits: `checkout.session.completed`, and `invoice.paid` when it starts or renews a period (`billing_reason` subscription_create / subscription_cycle; the plan of the price paid). "
      + "Taken back: `charge.refunded` (the refunded share), `charge.dispute.created` / `funds_withdrawn` freeze the disputed share until `charge.dispute.closed` (won: released; lost: kept). See docs/payments.md." }),
  "/webhooks/paypal": post("paypalWebhook", "PayPal events (PAYMENT.CAPTURE.COMPLETED, REFUNDED, REVERSED)", "Webhooks", "WebhookAck", { security: [{ paypalTransmissionSig: [], paypalTransmissionId: [], paypalTransmissionTime: [], paypalCertUrl: [], paypalAuthAlgo: [] }], errs: [400, 413, 429, 502, 503],
    reqSchema: "PaypalEvent", example: { id: "WH-1", event_type: "PAYMENT.CAPTURE.COMPLETED", resource: {} },
    description: "Verified with PayPal's verify-webhook-signature API using the PAYPAL-* transmission headers. A capture credits; a refund or reversal takes back the credits of everything refunded from the capture so far. "
      + "Deliveries are counted per client address (`PAYPAL_WEBHOOK_LIMIT`, default 60 a minute) before any call to PayPal: past it, 429 with Retry-After." }),
  "/admin/add-credits": post("adminAddCredits", "Add credits to a key (by plaintext or id)", "Admin", "Grant", { security: admin, errs: [...adminErrors, 413],
    reqSchema: "AddCreditsRequest", example: { apiKey: KEY_ID, credits: 100, reason: "manual top-up" } }),
  "/admin/import-keys": post("adminImportKeys", "Import the original product's balances (one SCAN page)", "Admin", "ImportKeys", { security: admin, errs: [...adminErrors, 413], reqSchema: "ImportKeysRequest", example: { cursor: "0", count: 100 } }),
  "/admin/keys": post("adminCreateKey", "Create a key (the plaintext is shown once)", "Admin", "CreatedKey", { security: admin, errs: [...adminErrors, 413], status: 201,
    reqSchema: "CreateKeyRequest", example: { name: "acme", plan: "pro", credits: 500, reason: "welcome credits" } }),
  "/admin/stats": get("adminStats", "Cost versus revenue per day and model", "Admin", "Stats", { security: admin, errs: adminErrors,
    description: "Name at most one scope: `key_id`, `rapidapi_user` or `rapidapi_plan`.",
    params: [q("from", "YYYY-MM-DD (default today).", { type: "string", format: "date" }), q("to", "YYYY-MM-DD (default today).", { type: "string", format: "date" }),
      q("key_id", "One key's calls.", { type: "string", pattern: "^key_[0-9a-f]{16}$" }), q("rapidapi_user", "One RapidAPI user's calls."), q("rapidapi_plan", "One RapidAPI subscription's calls (in RAPIDAPI_PLANS).")] }),
  "/admin/unmatched-payments": get("adminUnmatchedPayments", "Payments credited to nobody, refund debts", "Admin", "Unmatched", { security: admin, errs: adminErrors }),
  "/admin/keys/{key_id}": { ...keyPath, ...get("adminGetKey", "A key: plan, status, balance, dates", "Admin", "AdminKey", { security: admin, errs: adminErrors }) },
  "/admin/keys/{key_id}/ledger": { ...keyPath, ...get("adminKeyLedger", "A key's ledger, newest first", "Admin", "Ledger", { security: admin, errs: adminErrors, params: pageParams }) },
  "/admin/keys/{key_id}/credits": { ...keyPath, ...post("adminGrantCredits", "Grant (or take back) credits, with a reason", "Admin", "Grant", { security: admin, errs: [...adminErrors, 413],
    reqSchema: "GrantRequest", example: { credits: 100, reason: "support refund #42" } }) },
  "/admin/keys/{key_id}/revoke": { ...keyPath, ...post("adminRevokeKey", "Revoke a key (401 at once)", "Admin", "KeyOp", { security: admin, errs: adminErrors }) },
  "/admin/keys/{key_id}/rotate": { ...keyPath, ...post("adminRotateKey", "Rotate a key: a new plaintext, the same balance and ledger", "Admin", "KeyOp", { security: admin, errs: adminErrors }) },
};
// ---------- media (images, speech, music) ----------
const AUDIO_TYPES = ["audio/mpeg", "audio/wav", "audio/ogg", "audio/opus", "audio/aac", "audio/flac", "audio/pcm", "audio/basic", "application/octet-stream"];
const audio = Object.fromEntries(AUDIO_TYPES.map((t) => [t, { schema: { type: "string", format: "binary", description: "The audio as the provider streams it." } }]));
const imageFields = {
  model: str("An image model of /v1/models (`gpt-image-2`, …)."), prompt: str("", { maxLength: 32000 }), n: int("", { minimum: 1, maximum: 10 }),
  size: str("", { enum: ["1024x1024", "1024x1536", "1536x1024", "auto"] }), quality: str("", { enum: ["low", "medium", "high", "auto"] }),
  output_format: str("", { enum: ["png", "jpeg", "webp"] }), output_compression: int("", { minimum: 0, maximum: 100 }), background: str(""), moderation: str(""),
};
Object.assign(schemas, {
  OpenAiImagesRequest: obj({ ...imageFields, user: str(""), response_format: { const: "b64_json" } }, ["model", "prompt"], { description: "OpenAI's Images API request (fields outside this list: 400)." }),
  OpenAiImagesResponse: obj({ created: int(""), data: { type: "array", items: obj({ b64_json: str(""), url: str(""), revised_prompt: str("") }) }, usage: { type: "object" }, x_broker: xBroker }, ["data"]),
  NativeImageRequest: obj(imageFields, ["model", "prompt"]),
  NativeImageResponse: obj({
    id: str(""), object: { const: "image.generation" }, provider: str(""), model: str(""), created: nullable(int("")), images: int("How many images."),
    data: { type: "array", items: { type: "object" } }, units: { type: "object" }, credits_charged: num(""), credits_remaining: num(""), billed_by: str(""), request_id: str(""),
  }, ["id", "object", "model", "data", "request_id"]),
  OpenAiSpeechRequest: obj({ model: str("`tts-1`, `tts-1-hd`, or `elevenlabs/<model>`."), input: str("The text."), voice: str("An OpenAI voice, or an ElevenLabs voice id."),
    response_format: str("", { enum: ["mp3", "opus", "aac", "flac", "wav", "pcm"] }), speed: num("") }, ["model", "input", "voice"]),
  TtsRequest: obj({ voice_id: str("An ElevenLabs voice id. A premade voice is held at the model's rate; any other at 3× (a Voice Library voice may multiply its credits); the charge is ElevenLabs' `character-cost`."), text: str(""), model_id: str("Default `eleven_multilingual_v2`."), output_format: str("e.g. `mp3_44100_128`."), voice_settings: { type: "object" } }, ["voice_id", "text"]),
  MusicRequest: obj({ prompt: str(""), model: str("`stable-audio-2.5` or `stable-audio-2` (default)."), duration: num("Seconds, 1-190.", { minimum: 1, maximum: 190 }),
    output_format: str("", { enum: ["mp3", "wav"] }), seed: int(""), steps: int("`stable-audio-2`: 30-50 (its price is known up to 50 steps; more is a 400); `stable-audio-2.5`: 4-8.") }, ["prompt"]),
});
const mediaOp = ({ id, summary, description, req, shape, example, ok }) => ({
  post: { operationId: id, summary, description, tags: ["Media"], security: bearer, requestBody: body(ref(req), example),
    responses: { 200: { description: "The result; the head carries the exact charge.", headers: meteredHeaders, content: ok }, ...errors(shape, customerErrors) } },
});
Object.assign(paths, {
  "/v1/images/generations": mediaOp({ id: "imagesGenerations", summary: "OpenAI-compatible image generation", shape: "openai", req: "OpenAiImagesRequest",
    description: "The OpenAI SDKs' `images.generate` works. OpenAI's answer with an `x_broker` object. Errors in OpenAI's shape.",
    example: { model: "gpt-image-2", prompt: "A watercolor lighthouse at dawn", size: "1024x1024", quality: "low" }, ok: { "application/json": { schema: ref("OpenAiImagesResponse") } } }),
  "/v1/image": mediaOp({ id: "image", summary: "Image generation in the gateway's own shape", shape: "native", req: "NativeImageRequest",
    description: "Per-image or per-token billing by model (see /v1/models).",
    example: { model: "gpt-image-2", prompt: "A watercolor lighthouse at dawn", n: 1, quality: "low" }, ok: { "application/json": { schema: ref("NativeImageResponse") } } }),
  "/v1/audio/speech": mediaOp({ id: "audioSpeech", summary: "OpenAI-compatible text to speech (OpenAI or ElevenLabs voices)", shape: "openai", req: "OpenAiSpeechRequest",
    description: "The audio is streamed as it arrives, with the provider's content type. Errors in OpenAI's shape.",
    example: { model: "tts-1", voice: "alloy", input: "Your order has shipped.", response_format: "wav" }, ok: audio }),
  "/v1/tts": mediaOp({ id: "tts", summary: "Text to speech with ElevenLabs' fields", shape: "native", req: "TtsRequest",
    description: "Billed per character; the audio is streamed as it arrives.",
    example: { voice_id: "JBFqnCBsd6RMkjVDRZzb", text: "Your order has shipped.", model_id: "eleven_flash_v2_5", output_format: "mp3_44100_128" }, ok: audio }),
  "/v1/music": mediaOp({ id: "music", summary: "Music generation (Stability Stable Audio)", shape: "native", req: "MusicRequest",
    description: "A flat price per generation; the audio is passed on as it arrives.",
    example: { prompt: "Upbeat lo-fi hip hop loop, warm Rhodes piano, 90 BPM", model: "stable-audio-2.5", duration: 30 }, ok: audio }),
});

// ---------- Responses API (docs/responses.md) ----------
const RESPONSES_FIELDS = `| field | OpenAI models | Anthropic and Gemini models |
|---|---|---|
| \`model\` | bare or \`openai/…\` | \`anthropic/…\`, \`google/…\` |
| \`input\` (string or items), \`instructions\` | forwarded | translated: \`message\` (\`input_text\`, \`input_image\`, \`output_text\`), \`function_call\`, \`function_call_output\`; Claude's own \`reasoning\` items back to Claude, others dropped |
| \`stream\` | OpenAI's events passed through | translated events |
| \`tools\` (\`function\`), \`tool_choice\`, \`parallel_tool_calls\` | forwarded (also \`custom\`, \`local_shell\`, \`shell\`, \`apply_patch\`, \`namespace\`, \`tool_search\` run by the client; \`additional_tools\` input items) | translated (function tools; \`namespace\` groups dropped; Gemini cannot honour \`parallel_tool_calls: false\`) |
| \`max_output_tokens\`, \`temperature\`, \`top_p\` | forwarded | translated |
| \`text.format\` | forwarded | translated (Anthropic: \`json_schema\` only) |
| \`reasoning.effort\` | forwarded | thinking (Claude's signed thinking comes back as a \`reasoning\` item and goes back to Claude); Gemini's thinking level/budget |
| \`store\` | absent or \`false\`: sent as \`false\`; \`true\`: 400 | same |
| \`include\` | \`reasoning.encrypted_content\`, \`message.output_text.logprobs\`; others 400 | accepted, nothing to include |
| \`reasoning.summary\`, \`reasoning.context\`, \`text.verbosity\`, \`metadata\`, \`user\`, \`safety_identifier\`, \`prompt_cache_key\`, \`client_metadata\`, \`truncation\`, \`stream_options\`, \`max_tool_calls\` | forwarded | dropped (no equivalent; change neither answer nor price) |
| \`service_tier\` | \`auto\`/\`default\` only | same |
| \`top_logprobs\` | forwarded | 400 |
| \`previous_response_id\`, \`conversation\`, \`background: true\`, \`prompt\` | 400 (no stored state) | 400 |
| built-in tools \`web_search*\`, \`file_search\`, \`code_interpreter\`, \`computer_use*\`, \`image_generation\`, \`mcp\` | 400 naming the tool (priced per call; not in the price table; Codex: \`web_search = "disabled"\`) | 400 |
| any other field | 400 naming it | 400 |`;
Object.assign(schemas, {
  ResponsesRequest: obj({
    model: str("`openai/…`, `anthropic/…`, `google/…` or a bare OpenAI model."),
    input: { anyOf: [{ type: "string", minLength: 1 }, { type: "array", minItems: 1, items: { type: "object" } }], description: "A user message, or input items." },
    instructions: str("The system prompt."), stream: { type: "boolean" }, store: { const: false, description: "Absent means false: nothing is stored." },
    max_output_tokens: int("Output bound; default: the most the balance covers.", { minimum: 1 }), temperature: num(""), top_p: num(""),
    tools: { type: "array", items: obj({ type: str("", { examples: ["function"] }), name: str(""), description: str(""), parameters: { type: "object" }, strict: { type: "boolean" } }, ["type"]) },
    tool_choice: { anyOf: [{ type: "string", enum: ["auto", "none", "required"] }, { type: "object" }] }, parallel_tool_calls: { type: "boolean" },
    reasoning: obj({ effort: str(""), summary: nullable(str("")) }), text: obj({ format: { type: "object" }, verbosity: str("", { enum: ["low", "medium", "high"] }) }),
    include: { type: "array", items: { type: "string", enum: ["reasoning.encrypted_content", "message.output_text.logprobs"] } },
    metadata: { type: "object" }, user: str(""), safety_identifier: str(""), prompt_cache_key: str(""), client_metadata: { type: "object" },
    service_tier: str("", { enum: ["auto", "default"] }), truncation: str("", { enum: ["auto", "disabled"] }), stream_options: { type: "object" }, top_logprobs: int(""), max_tool_calls: int(""),
  }, ["model", "input"], { description: `OpenAI's Responses API request. Fields per provider:\n\n${RESPONSES_FIELDS}` }),
  ResponsesResponse: obj({
    id: str(""), object: { const: "response" }, created_at: int(""), status: str("", { enum: ["completed", "incomplete", "failed", "in_progress"] }), model: str(""),
    output: { type: "array", items: obj({ type: str("", { enum: ["message", "function_call", "reasoning", "custom_tool_call", "local_shell_call", "shell_call", "apply_patch_call"] }), id: str("") }, ["type"]) },
    usage: nullable(obj({ input_tokens: int(""), input_tokens_details: obj({ cached_tokens: int("") }), output_tokens: int(""), output_tokens_details: obj({ reasoning_tokens: int("") }), total_tokens: int("") },
      ["input_tokens", "output_tokens", "total_tokens"])),
    error: nullable({ type: "object" }), incomplete_details: nullable({ type: "object" }), x_broker: xBroker,
  }, ["id", "object", "status", "model", "output"]),
});
paths["/v1/responses"] = {
  post: {
    operationId: "responses", summary: "OpenAI-compatible Responses API (Codex, the Agents SDK, the AI SDK)", tags: ["Chat"], security: bearer,
    description: "Works with the OpenAI SDKs' `responses.create`, Codex CLI (`wire_api = \"responses\"`), the OpenAI Agents SDK, the Vercel AI SDK's `openai(model)` and LangChain's `use_responses_api`. " +
      "OpenAI models get OpenAI's own answer (events passed through); Anthropic and Gemini models are translated. The gateway keeps no state. " +
      "With `stream: true`: named events `response.created` … `response.completed` (with usage; `x_broker` on a translated model's, while an OpenAI model's stream is OpenAI's bytes, its charge at `GET /v1/requests/{X-Request-Id}`). Errors in OpenAI's shape.\n\n" + RESPONSES_FIELDS,
    requestBody: body(ref("ResponsesRequest"), { model: "openai/gpt-4o-mini", input: "Say hi", max_output_tokens: 50 }),
    responses: {
      200: { description: "The response object; with `stream: true`, server-sent events (no `[DONE]`).", headers: meteredHeaders,
        content: { "application/json": { schema: ref("ResponsesResponse") }, ...sse("Named events (`event: response.…`) whose data is a JSON event with `type` and `sequence_number`.") } },
      ...errors("openai", customerErrors),
    },
  },
};

// Stateful links (schemathesis follows them): a created key → its record, ledger, grant, rotation, revocation.
const keyLinks = Object.fromEntries(["adminGetKey", "adminKeyLedger", "adminGrantCredits", "adminRotateKey", "adminRevokeKey"]
  .map((id) => [id, { operationId: id, parameters: { key_id: "$response.body#/id" } }]));
paths["/admin/keys"].post.responses[201].links = keyLinks;

schemas.StripeEvent = obj({ id: str(""), type: str(""), data: obj({ object: { type: "object" } }) }, ["id", "type"]);
schemas.PaypalEvent = obj({ id: str(""), event_type: str(""), resource: { type: "object" } }, ["id", "event_type"]);

const header = (description, schema = { type: "string" }) => ({ description, schema });
const apiKeyHeader = (name, description) => ({ type: "apiKey", in: "header", name, description });

export const spec = {
  openapi: "3.1.0",
  info: {
    title: "AI API Broker",
    version: "0.1.0",
    summary: "OpenAI, Anthropic and Gemini calls for prepaid credits",
    description: "Calls are admitted against a hold (the worst case), charged at the provider's reported usage × margin, and the rest is released. The guide, with live prices and an example for every operation, is at `/`.",
    license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" },
  },
  servers: [{ url: "/", description: "This deployment" }],
  tags: [
    { name: "Chat", description: "Metered calls in three shapes." },
    { name: "Media", description: "Images, speech and music, metered per unit." },
    { name: "Account", description: "The calling key: balance, ledger, models." },
    { name: "Billing", description: "Buying credits: Stripe Checkout and the Billing Portal." },
    { name: "Webhooks", description: "Payment providers' deliveries (signed)." },
    { name: "Admin", description: "Key and credit management behind X-Admin-Secret." },
    { name: "Meta", description: "Health." },
  ],
  paths,
  components: {
    schemas,
    parameters: {
      KeyId: { name: "key_id", in: "path", required: true, description: "A key id: `key_` and 16 hex digits.", schema: { type: "string" }, example: KEY_ID },
    },
    headers: {
      "X-Request-Id": header("The request's id (logged with it)."),
      "X-Credits-Charged": header("Credits charged; `pending` on a stream head (the exact charge is in the final event)."),
      "X-Credits-Remaining": header("Spendable credits after the call (while a stream's hold is open: the balance with it held)."),
      "X-Credits-Held": header("Credits held for a stream in flight."),
      RateLimit: header("IETF draft RateLimit: limit, remaining, reset."),
      "RateLimit-Policy": header("The plan's window, e.g. `100;w=3600`."),
      "X-RateLimit-Limit": header("Requests allowed per window.", { type: "integer" }),
      "X-RateLimit-Remaining": header("Requests left in the window.", { type: "integer" }),
      "X-RateLimit-Reset": header("Seconds until a slot frees.", { type: "integer" }),
      "Retry-After": header("Seconds to wait.", { type: "integer" }),
    },
    securitySchemes: {
      bearerKey: { type: "http", scheme: "bearer", description: "Your API key: `Authorization: Bearer sk-broker-…`." },
      anthropicKey: apiKeyHeader("x-api-key", "The API key as the Anthropic SDK sends it (/v1/messages)."),
      adminSecret: apiKeyHeader("X-Admin-Secret", "The ADMIN_SECRET (10 wrong ones per address in 15 min: 429)."),
      rapidApi: apiKeyHeader("X-RapidAPI-Proxy-Secret", "RapidAPI's proxy secret, with X-RapidAPI-User and X-RapidAPI-Subscription."),
      stripeSignature: apiKeyHeader("Stripe-Signature", "Stripe's webhook signature (`t=…,v1=…`)."),
      paypalTransmissionSig: apiKeyHeader("PAYPAL-TRANSMISSION-SIG", "PayPal's webhook signature."),
      paypalTransmissionId: apiKeyHeader("PAYPAL-TRANSMISSION-ID", "PayPal's delivery id."),
      paypalTransmissionTime: apiKeyHeader("PAYPAL-TRANSMISSION-TIME", "PayPal's delivery time."),
      paypalCertUrl: apiKeyHeader("PAYPAL-CERT-URL", "PayPal's signing certificate URL."),
      paypalAuthAlgo: apiKeyHeader("PAYPAL-AUTH-ALGO", "PayPal's signature algorithm."),
    },
  },
};

// Claude Code, embeddings, Gemini's own API (docs/openapi-clients.mjs).
addClientRoutes({
  paths, schemas, tags: spec.tags, securitySchemes: spec.components.securitySchemes, SHAPE_SCHEMA,
  h: { ref, obj, str, num, int, nullable, errors, body, json, sse, meteredHeaders, requestIdHeader, bearer, customerErrors, xBroker },
});

// Idempotency-Key and X-Max-Credits on every metered route (docs/openapi-money-controls.mjs).
addMoneyControls({ paths, components: spec.components });
// Sub-keys (issue 25; docs/openapi-subkeys.mjs).
addSubKeyRoutes({ paths, schemas, h: { ref, obj, str, num, int, nullable, get, post, keyPath } });
// Low-balance alerts and auto top-up (docs/openapi-alerts.mjs).
addAlertRoutes({ paths, schemas, h: { ref, obj, str, num, int, errors, body, json } });
describeTopupEvents(paths);
