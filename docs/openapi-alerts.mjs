// Low-balance alerts and auto top-up (docs/accounts.md): GET/PUT/DELETE /v1/alerts,
// GET/PUT/DELETE /v1/auto-topup, POST /v1/auto-topup/card. Added by docs/openapi.mjs.

/** Adds the routes and schemas to the spec's parts. */
export function addAlertRoutes({ paths, schemas, h }) {
  const { ref, obj, str, num, int, errors, body, json } = h;
  const security = [{ bearerKey: [] }];
  const errs = [400, 401, 413, 429, 503];
  const op = (id, summary, schema, { reqSchema, example, description, extra = [] } = {}) => ({
    operationId: id, summary, tags: ["Billing"], security, ...(description ? { description } : {}),
    ...(reqSchema ? { requestBody: body(ref(reqSchema), example) } : {}),
    responses: { 200: json(ref(schema), summary), ...errors("native", [...errs, ...extra]) },
  });
  const bad = "Bad input (an unknown field, a threshold below zero, a URL that is not https, …) is 400 naming the field (`error.param`); nothing changes.";
  Object.assign(schemas, {
    AlertRequest: obj({ threshold: num("Credits: the alert fires when a call leaves the balance below this (0 or more)."), url: str("Where the event is POSTed: an https URL with a public host.") }, ["threshold", "url"], { additionalProperties: false }),
    Alert: obj({
      enabled: { type: "boolean" }, threshold: num("Credits."), url: str(""), armed: { type: "boolean", description: "false after an alert fired, until the next top-up." },
      signature_header: str("The header carrying the signature (`Broker-Signature`)."), secret: str("The signing secret (`whsec_…`): in the answer the first time only."), note: str(""),
    }, ["enabled"]),
    AutoTopupRequest: obj({
      threshold: num("Credits: a top-up starts when a call leaves the balance below this (0 or more)."), amount: num("Credits bought each time, priced as a credit pack (within its bounds)."),
      max_per_day: int("At most this many top-ups a UTC day (1-20, default 3).", { minimum: 1, maximum: 20 }),
    }, ["threshold", "amount"], { additionalProperties: false }),
    AutoTopup: obj({
      enabled: { type: "boolean" }, card: obj({ saved: { type: "boolean" }, payment_method: str(""), customer: str("") }), threshold: num(""), amount: num(""), amount_usd: num(""),
      max_per_day: int(""), status: str("`on`, `off`, or `off: the card was declined (<code>)`."), last_error: str("The decline's message."),
    }, ["enabled", "card"]),
    SaveCardRequest: obj({ success_url: str("https (http only for localhost)."), cancel_url: str("") }, ["success_url", "cancel_url"], { additionalProperties: false }),
    SaveCardSession: obj({ id: str("`cs_…`"), url: str("Stripe's hosted page."), mode: { const: "setup" }, key_id: str(""), customer: str("`cus_…`") }, ["id", "url", "mode"]),
  });
  paths["/v1/alerts"] = {
    get: op("getAlert", "The key's low-balance alert", "Alert"),
    put: op("putAlert", "Set the low-balance alert (signed POSTs to an https URL)", "Alert", {
      reqSchema: "AlertRequest", example: { threshold: 100, url: "https://hooks.example.com/broker" },
      description: "When a call first leaves the balance below `threshold`, the gateway POSTs a `balance.low` event to `url`, once, until the next top-up re-arms it. "
        + "Each POST carries `Broker-Signature: t=<unix>,v1=<hex>`: HMAC-SHA256 over `\"{t}.{body}\"` with the secret in this answer (shown the first time only). "
        + "Retried 3 more times (1, 3, 8 s) when the receiver does not answer 2xx, then by the cron sweeper (every 10 minutes, 3 runs). Auto top-up failures are sent too (`auto_topup.failed`). " + bad,
    }),
    delete: op("deleteAlert", "Remove the alert (and its secret)", "Alert"),
  };
  paths["/v1/auto-topup"] = {
    get: op("getAutoTopup", "The key's auto top-up and saved card", "AutoTopup"),
    put: op("putAutoTopup", "Turn auto top-up on", "AutoTopup", {
      reqSchema: "AutoTopupRequest", example: { threshold: 50, amount: 1000, max_per_day: 2 },
      description: "Needs a saved card (`POST /v1/auto-topup/card`; else 400 naming `card`). When a call leaves the balance below `threshold`, the gateway charges the card off-session for `amount` credits, "
        + "at most `max_per_day` times a UTC day; the credits arrive with Stripe's `payment_intent.succeeded`, once. A declined card turns auto top-up off (`status`) and is alerted. " + bad,
    }),
    delete: op("deleteAutoTopup", "Turn auto top-up off (the card stays saved)", "AutoTopup"),
  };
  paths["/v1/auto-topup/card"] = {
    post: op("saveCard", "Save a card for auto top-up (Stripe Checkout, setup mode)", "SaveCardSession", {
      reqSchema: "SaveCardRequest", example: { success_url: "https://shop.example/saved", cancel_url: "https://shop.example/account" }, extra: [502],
      description: "Opens a Checkout Session in setup mode for the key's Stripe customer; Stripe's `setup_intent.succeeded` saves the card. " + bad,
    }),
  };
}

/** The Stripe webhook's events for auto top-up, added to its description. */
export function describeTopupEvents(paths) {
  const op = paths["/webhooks/stripe"]?.post;
  if (op) op.description += " Auto top-up (docs/accounts.md): `setup_intent.succeeded` saves the card; `payment_intent.succeeded` of an auto top-up credits it once; `payment_intent.payment_failed` turns auto top-up off.";
}
