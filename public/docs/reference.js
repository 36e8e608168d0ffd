// The interactive reference: @scalar/api-reference (vendored into /vendor/ by
// scripts/build-docs.mjs) rendering /openapi.json. Everything that would reach a Scalar host is
// off: fonts, the hosted client, the proxy, telemetry.
"use strict";
Scalar.createApiReference("#reference", {
  url: "/openapi.json",
  withDefaultFonts: false,
  hideClientButton: true,
  telemetry: false,
  showDeveloperTools: "never",
  agent: { disabled: true },
  mcp: { disabled: true },
  hideDarkModeToggle: false,
});
