// Imports the original product's balances (`user:<key>:credits` in the same Upstash database)
// through the worker's admin API, once: each becomes a hashed key with an `import` ledger entry.
// Running it again changes nothing.
//
//   npm run import-keys                       # the local stack: URL and ADMIN_SECRET from .dev.vars
//   BROKER_URL=https://… ADMIN_SECRET=… npm run import-keys
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
function devVar(name) {
  const file = path.join(ROOT, ".dev.vars");
  if (!fs.existsSync(file)) return undefined;
  const line = fs.readFileSync(file, "utf8").split("\n").find((l) => l.startsWith(`${name}=`));
  return line?.slice(name.length + 1).trim();
}

const url = (process.env.BROKER_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8787}`).replace(/\/$/, "");
const secret = process.env.ADMIN_SECRET ?? devVar("ADMIN_SECRET");
if (!secret) {
  console.error("set ADMIN_SECRET (or run `npm run dev` first, which writes .dev.vars)");
  process.exit(2);
}

let cursor = "0";
let imported = 0;
let skipped = 0;
do {
  const res = await fetch(`${url}/admin/import-keys`, {
    method: "POST",
    headers: { "x-admin-secret": secret, "content-type": "application/json" },
    body: JSON.stringify({ cursor, count: 200 }),
  });
  const body = await res.json();
  if (!res.ok) {
    console.error(`import failed: ${res.status} ${JSON.stringify(body)}`);
    process.exit(1);
  }
  for (const k of body.imported) console.log(`imported ${k.key_id}: ${k.credits} credits${k.created ? " (new key)" : ""}`);
  imported += body.imported.length;
  skipped += body.skipped.length;
  cursor = body.next_cursor;
} while (cursor);
console.log(`done: ${imported} imported, ${skipped} skipped (already imported or empty)`);
