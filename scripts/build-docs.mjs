// Writes public/openapi.json from docs/openapi.mjs, and vendors the reference renderer
// (@scalar/api-reference's standalone bundle) into the git-ignored public/vendor/.
// `--vendor-only`: only the renderer (npm test; the spec is checked, never rewritten there).
// `--check`: exit 1 when the committed public/openapi.json differs from what would be written.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spec } from "../docs/openapi.mjs";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = path.join(ROOT, "public", "openapi.json");
const text = JSON.stringify(spec, null, 2) + "\n";

if (process.argv.includes("--check")) {
  const have = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
  if (have !== text) {
    console.error("public/openapi.json is stale: run `node scripts/build-docs.mjs` and commit it");
    process.exit(1);
  }
  process.exit(0);
}
if (!process.argv.includes("--vendor-only")) fs.writeFileSync(target, text);

const vendor = path.join(ROOT, "public", "vendor");
const standalone = path.join(ROOT, "node_modules", "@scalar", "api-reference", "dist", "browser", "standalone.js");
if (fs.existsSync(standalone)) {
  fs.mkdirSync(vendor, { recursive: true });
  fs.copyFileSync(standalone, path.join(vendor, "scalar-api-reference.js"));
}
if (!process.argv.includes("--vendor-only")) console.log(`wrote ${path.relative(ROOT, target)} (${Object.keys(spec.paths).length} paths)`);
