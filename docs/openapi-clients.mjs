// The routes that let third-party clients run unmodified (docs/clients.md): Anthropic's
// count_tokens and beta header (Claude Code), OpenAI's embeddings, Gemini's own API. Added to the
// OpenAPI document by docs/openapi.mjs; each field table says what is forwarded and why.

/** Adds the routes, schemas, tags and security schemes to the spec's parts. */
export function addClientRoutes({ paths, schemas, tags, securitySchemes, SHAPE_SCHEMA, h }) {
  const { ref, obj, str, num, int, nullable, errors, body, json, sse, meteredHeaders, requestIdHeader, bearer, customerErrors, xBroker } = h;

  // ---------- Anthropic: beta header, context_management, count_tokens ----------
  const FORWARDED = [
    ["claude-code-20250219", "Claude Code's client marker: changes no price and no billed usage."],
    ["interleaved-thinking-2025-05-14", "Thinking between tool calls: thinking tokens are output tokens, billed and bounded by `max_tokens`."],
    ["context-management-2025-06-27", "Enables `context_management` edits, which only clear earlier turns from the prompt (fewer input tokens, reported in usage)."],
    ["per-turn-control-2026-07-01", "`system` turns inside `messages` with their own `output_config.effort`: prompt text and an effort within `max_tokens`."],
    ["effort-2025-11-24", "`output_config.effort`: how hard the model thinks, within `max_tokens` at the output price."],
    ["advanced-tool-use-2025-11-20", "Deferred tool loading (`defer_loading`) on custom tools: tokens only (server tools stay refused)."],
    ["fine-grained-tool-streaming-2025-05-14", "Streams tool arguments in smaller pieces: same tokens."],
    ["token-efficient-tools-2025-02-19", "Tool calls in fewer output tokens: billed as reported."],
    ["prompt-caching-2024-07-31", "Prompt caching (generally available): cache reads and writes are priced classes."],
    ["extended-cache-ttl-2025-04-11", "1-hour cache writes: priced (`cache_write_1h`)."],
    ["output-128k-2025-02-19", "A larger `max_tokens` on older models: still capped by the model's limit and held in full."],
  ];
  const REFUSED = [
    ["context-1m-*", "400: prices every token of a prompt over 200k at a tier the price table does not hold (the 1M-context models of /v1/models need no beta)."],
    ["fast-mode-*", "400: priced at a multiple of the list price."],
  ];
  const betaTable = "| value | forwarded because |\n|---|---|\n" + FORWARDED.map(([b, why]) => `| \`${b}\` | ${why} |`).join("\n")
    + "\n\n| value | refused |\n|---|---|\n" + REFUSED.map(([b, why]) => `| \`${b}\` | ${why} |`).join("\n")
    + "\n\nAny other value is **dropped** (not forwarded; the provider then serves its standard, list-priced behaviour) and named in the `X-Broker-Dropped-Betas` answer header: clients such as Claude Code add betas with every release, and refusing them would break the client each time.";
  const anthropicBeta = { name: "anthropic-beta", in: "header", required: false, description: `Comma-separated Anthropic beta features.\n\n${betaTable}`, schema: { type: "string" }, example: "interleaved-thinking-2025-05-14,context-management-2025-06-27" };
  const droppedHeader = { "X-Broker-Dropped-Betas": { description: "The `anthropic-beta` values that were not forwarded, when any.", schema: { type: "string" } } };
  const messages = paths["/v1/messages"].post;
  messages.parameters = [anthropicBeta, { name: "beta", in: "query", required: false, description: "Sent by the Anthropic SDK's beta client (Claude Code); accepted and ignored: the header decides.", schema: { type: "string" } }];
  Object.assign(messages.responses[200].headers, droppedHeader);
  const req = schemas.AnthropicMessagesRequest;
  Object.assign(req.properties, {
    system: { anyOf: [{ type: "string" }, { type: "array", items: { type: "object" } }], description: "Text, or text blocks (with `cache_control`: cache writes and reads are priced classes)." },
    tools: { type: "array", items: { type: "object" }, description: "Custom tools (`defer_loading` accepted). Server tools (web search, code execution) are billed per use: 400." },
    tool_choice: { type: "object" },
    thinking: obj({ type: str("", { enum: ["enabled", "adaptive", "disabled"] }), budget_tokens: int("With `enabled`: below `max_tokens`, at least 1024."), display: str("`omitted` or `summarized`: what the answer shows; thinking tokens are billed either way.") }, ["type"]),
    context_management: obj({ edits: { type: "array", items: obj({ type: str("", { enum: ["clear_thinking_20251015", "clear_tool_uses_20250919"] }) }, ["type"]) } }, [],
      { description: "Needs the `context-management-2025-06-27` beta. Clearing edits only: they remove earlier content from the prompt (billed as reported). `compact_*` runs a second model call billed apart: 400." }),
    output_config: obj({ effort: str("", { enum: ["low", "medium", "high", "max"] }), format: { type: "object" } }),
    metadata: obj({ user_id: str("An opaque user id (Claude Code sends one); forwarded, no price effect.") }),
    service_tier: str("", { enum: ["auto", "standard_only"] }),
  });
  req.description = "Anthropic's Messages request. Fields outside this table are 400s naming them (`inference_geo`, `mcp_servers`, `container` are priced apart).";

  schemas.CountTokensRequest = obj({
    model: str("An Anthropic model of /v1/models."), messages: { type: "array", items: { type: "object" }, minItems: 1 },
    system: { anyOf: [{ type: "string" }, { type: "array", items: { type: "object" } }] }, tools: { type: "array", items: { type: "object" } }, tool_choice: { type: "object" },
    thinking: { type: "object" }, context_management: { type: "object" }, output_config: { type: "object" },
  }, ["model", "messages"], { additionalProperties: false, description: "The prompt of a Messages request (its fields as on /v1/messages; `max_tokens` and `stream` have no count)." });
  schemas.CountTokens = obj({ input_tokens: int("Tokens the prompt costs as input.") }, ["input_tokens"]);
  paths["/v1/messages/count_tokens"] = {
    post: {
      operationId: "countTokens", summary: "Anthropic's token count of a Messages request (free)", tags: ["Provider APIs"],
      description: "Anthropic does not charge for it, and neither does the gateway: nothing is held, charged or written to the ledger. An active key is needed (rate limited like the account reads) and the body is checked as on /v1/messages (fields, a priced model). Errors in Anthropic's shape.",
      security: [{ bearerKey: [] }, { anthropicKey: [] }], parameters: [anthropicBeta],
      requestBody: body(ref("CountTokensRequest"), { model: "claude-haiku-4-5", messages: [{ role: "user", content: "Say hi" }] }),
      responses: { 200: json(ref("CountTokens"), "The count.", { ...requestIdHeader, ...droppedHeader }), ...errors("anthropic", [400, 401, 413, 429, 502, 503, 504]) },
    },
  };

  // ---------- OpenAI embeddings ----------
  schemas.EmbeddingsRequest = obj({
    model: str("`text-embedding-3-small` ($0.02/1M tokens), `text-embedding-3-large` ($0.13/1M) or `text-embedding-ada-002` ($0.10/1M); `openai/` prefix optional."),
    input: { anyOf: [{ type: "string", minLength: 1 }, { type: "array", items: { type: "string", minLength: 1 }, minItems: 1, maxItems: 2048 }, { type: "array", items: { type: "integer", minimum: 0 }, minItems: 1 }, { type: "array", items: { type: "array", items: { type: "integer", minimum: 0 }, minItems: 1 }, minItems: 1, maxItems: 2048 }],
      description: "A string, strings, token ids, or arrays of token ids (one form per request). Held at one token per UTF-8 byte of text (at most 8,191 per input), or the token count; charged `usage.prompt_tokens`." },
    encoding_format: str("`float` (default) or `base64` (little-endian float32; the OpenAI SDKs ask for it and decode it).", { enum: ["float", "base64"] }),
    dimensions: int("text-embedding-3 models only: a shorter vector (1 to 1536 or 3072).", { minimum: 1 }),
    user: str("Forwarded; no price effect."),
  }, ["model", "input"], { additionalProperties: false, description: "OpenAI's embeddings request (fields outside this table: 400)." });
  schemas.EmbeddingsResponse = obj({
    object: { const: "list" }, model: str(""),
    data: { type: "array", items: obj({ object: { const: "embedding" }, index: int(""), embedding: { anyOf: [{ type: "array", items: { type: "number" } }, { type: "string", description: "base64" }] } }, ["object", "index", "embedding"]) },
    usage: obj({ prompt_tokens: int("Billed tokens."), total_tokens: int("") }, ["prompt_tokens"]), x_broker: xBroker,
  }, ["object", "data", "model", "usage"]);
  paths["/v1/embeddings"] = {
    post: {
      operationId: "embeddings", summary: "OpenAI-compatible embeddings", tags: ["Embeddings"], security: bearer,
      description: "The OpenAI SDKs' `embeddings.create` works (float and base64). OpenAI's answer with an `x_broker` object; the head carries the exact charge. Errors in OpenAI's shape. Gemini's embedding models are not sold: their answer reports no usage to bill.",
      requestBody: body(ref("EmbeddingsRequest"), { model: "text-embedding-3-small", input: ["The food was delicious", "and the waiter friendly"] }),
      responses: { 200: json(ref("EmbeddingsResponse"), "The vectors.", meteredHeaders), ...errors("openai", customerErrors) },
    },
  };

  // ---------- Gemini's own API ----------
  SHAPE_SCHEMA.gemini = "GeminiError";
  schemas.GeminiError = obj({
    error: obj({ code: int("The HTTP status."), message: str(""), status: str("", { examples: ["INVALID_ARGUMENT", "UNAUTHENTICATED", "RESOURCE_EXHAUSTED"] }), details: { type: "array", items: { type: "object" } } }, ["code", "message", "status"]),
  }, ["error"], { description: "Google's error shape (google.rpc.Status); `details[0]` is an ErrorInfo with the gateway's type as `reason` and the request id in `metadata`." });
  const part = obj({
    text: str(""), inlineData: obj({ mimeType: str("", { enum: ["image/png", "image/jpeg", "image/gif", "image/webp"] }), data: str("base64") }, ["mimeType", "data"], { description: "Images only (other media are priced apart: 400)." }),
    functionCall: { type: "object" }, functionResponse: { type: "object" }, thought: { type: "boolean" }, thoughtSignature: str(""), mediaResolution: { type: "object" },
  }, [], { description: "`fileData` (files under the gateway's account), `executableCode` and other parts: 400." });
  const content = obj({ role: str("", { enum: ["user", "model"] }), parts: { type: "array", items: part } }, ["parts"]);
  schemas.GenerateContentRequest = obj({
    contents: { type: "array", items: content, minItems: 1 },
    systemInstruction: content,
    generationConfig: obj({
      maxOutputTokens: int("Output bound (thoughts count toward it); default: the most the balance covers, sent to Gemini.", { minimum: 1 }),
      temperature: num(""), topP: num(""), topK: int(""), candidateCount: { const: 1 }, stopSequences: { type: "array", items: { type: "string" } },
      presencePenalty: num(""), frequencyPenalty: num(""), seed: int(""), responseMimeType: str(""), responseSchema: { type: "object" }, responseJsonSchema: { type: "object" },
      responseModalities: { type: "array", items: { const: "TEXT" }, description: "Text only: image and audio output are priced apart." }, thinkingConfig: { type: "object" }, mediaResolution: str(""),
      responseLogprobs: { type: "boolean" }, logprobs: int(""),
    }, [], { description: "`speechConfig`, `imageConfig` and fields outside this table: 400." }),
    tools: { type: "array", items: obj({ functionDeclarations: { type: "array", items: { type: "object" } } }), description: "Function declarations. Built-in tools (`googleSearch`, `codeExecution`, `urlContext`, `fileSearch`, `googleMaps`, …) are billed per use by Google: 400 naming the tool." },
    toolConfig: { type: "object" }, safetySettings: { type: "array", items: { type: "object" } },
  }, ["contents"], { description: "Gemini's own request (camelCase, or the REST docs' snake_case). `cachedContent` (storage billed by the hour) and fields outside this table: 400." });
  schemas.GenerateContentResponse = obj({
    candidates: { type: "array", items: obj({ content: content, finishReason: str(""), index: int("") }) },
    usageMetadata: obj({ promptTokenCount: int(""), candidatesTokenCount: int(""), thoughtsTokenCount: int(""), cachedContentTokenCount: int(""), totalTokenCount: int("") }),
    modelVersion: str(""), responseId: str(""),
  }, [], { description: "Gemini's answer, unchanged (assembled from the stream the gateway reads). The charge is in the X-Credits-* headers; no gateway field is added (the SDKs parse the body strictly)." });
  const gemini = ({ id, summary, stream }) => ({
    parameters: [{ name: "model", in: "path", required: true, description: "A Google model of /v1/models (bare name).", schema: { type: "string" }, example: "gemini-3.8-flash" }],
    post: {
      operationId: id, summary, tags: ["Provider APIs"],
      description: (stream ? "Server-sent events (`?alt=sse`), passed through byte for byte; usage is read from `usageMetadata` (cumulative, the last one counts). "
        : "The whole answer as Gemini gives it. ")
        + "The google-genai SDKs and the Gemini CLI work with only the base URL changed. Key in `x-goog-api-key` (or `?key=`, which is never logged, or a bearer token). Billed as chat: held on the prompt's bound and `maxOutputTokens`, charged the reported usage at list price. Errors in Google's shape.",
      security: [{ googApiKey: [] }, { googKeyQuery: [] }, { bearerKey: [] }],
      ...(stream ? { parameters: [{ name: "alt", in: "query", required: true, description: "`sse` (the only stream format served).", schema: { const: "sse" }, example: "sse" }] } : {}),
      requestBody: body(ref("GenerateContentRequest"), { contents: [{ role: "user", parts: [{ text: "Say hi" }] }], generationConfig: { maxOutputTokens: 50 } }),
      responses: {
        200: stream ? { description: "SSE chunks, each a GenerateContentResponse (`data: {…}`).", headers: meteredHeaders, content: sse("Gemini's chunks, CRLF-separated; no terminator.") }
          : json(ref("GenerateContentResponse"), "The answer.", meteredHeaders),
        ...errors("gemini", [...customerErrors, 404]),
      },
    },
  });
  paths["/v1beta/models/{model}:generateContent"] = gemini({ id: "geminiGenerateContent", summary: "Gemini's generateContent", stream: false });
  paths["/v1beta/models/{model}:streamGenerateContent"] = gemini({ id: "geminiStreamGenerateContent", summary: "Gemini's streamGenerateContent (SSE)", stream: true });
  // The google-genai SDKs 3.x call Gemini's `v1` by default: the same routes, the same format.
  paths["/v1/models/{model}:generateContent"] = gemini({ id: "geminiV1GenerateContent", summary: "Gemini's generateContent (API version v1)", stream: false });
  paths["/v1/models/{model}:streamGenerateContent"] = gemini({ id: "geminiV1StreamGenerateContent", summary: "Gemini's streamGenerateContent (API version v1, SSE)", stream: true });

  schemas.GeminiCountTokensRequest = obj({
    contents: { type: "array", items: content, minItems: 1 },
    generateContentRequest: { type: "object", description: "Or a whole generate request (`model`: `models/<the path's model>`), checked as on :generateContent." },
  }, [], { additionalProperties: false, description: "One of the two." });
  schemas.GeminiCountTokens = obj({ totalTokens: int("Prompt tokens."), promptTokensDetails: { type: "array", items: { type: "object" } } }, ["totalTokens"]);
  const count = (id, summary) => ({
    parameters: [{ name: "model", in: "path", required: true, description: "A Google model of /v1/models (bare name).", schema: { type: "string" }, example: "gemini-3.8-flash" }],
    post: {
      operationId: id, summary, tags: ["Provider APIs"], security: [{ googApiKey: [] }, { googKeyQuery: [] }, { bearerKey: [] }],
      description: "Google does not charge for it, and neither does the gateway: nothing is held, charged or written to the ledger. An active key is needed (rate limited like the account reads); the prompt is checked as on :generateContent. Errors in Google's shape.",
      requestBody: body(ref("GeminiCountTokensRequest"), { contents: [{ role: "user", parts: [{ text: "Say hi" }] }] }),
      responses: { 200: json(ref("GeminiCountTokens"), "The count."), ...errors("gemini", [400, 401, 404, 413, 429, 502, 503, 504]) },
    },
  });
  paths["/v1beta/models/{model}:countTokens"] = count("geminiCountTokens", "Gemini's token count (free)");
  paths["/v1/models/{model}:countTokens"] = count("geminiV1CountTokens", "Gemini's token count (API version v1, free)");

  securitySchemes.googApiKey = { type: "apiKey", in: "header", name: "x-goog-api-key", description: "The API key as the google-genai SDKs send it (Gemini's own API)." };
  securitySchemes.googKeyQuery = { type: "apiKey", in: "query", name: "key", description: "The API key as Google's REST docs show it (Gemini's own API); kept out of the gateway's log, but proxies may log URLs: prefer the header." };
  tags.push(
    { name: "Embeddings", description: "Vectors for text, metered per input token." },
    { name: "Provider APIs", description: "Routes in a provider's own format beyond chat, so its clients run unchanged: Anthropic's count_tokens, Gemini's generateContent (see docs/clients.md)." },
  );
}
