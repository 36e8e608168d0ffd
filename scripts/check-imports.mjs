// Checks that imports flow one way in each crate: no module imports one that imports it back,
// neither between files nor between top-level modules (`chat` ↔ `providers` would be a cycle
// even if no two files formed one). Also fails on any Rust file over the size limit.
//
//   node scripts/check-imports.mjs            (run by scripts/test)
//
// A module's imports are the `crate::…` and `super::…` paths its file uses outside comments;
// each path is resolved to the longest module it names.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CRATES = ["core/src", "src", "tools/upstash-front/src", "tools/mock-providers/src"];
const MAX_LINES = 800;

function rustFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...rustFiles(p));
    else if (e.name.endsWith(".rs")) out.push(p);
  }
  return out;
}

/** `chat/mod.rs` → `chat`, `products/chat.rs` → `products::chat`, `lib.rs` → `` (the root). */
function moduleOf(rel) {
  const parts = rel.replace(/\.rs$/, "").split(path.sep);
  if (["mod", "lib", "main"].includes(parts.at(-1))) parts.pop();
  return parts.join("::");
}

/** The code with comments and the contents of string and char literals blanked, in one pass
 *  from the left: whichever starts first wins, so a `//` inside a string (a URL) is not a
 *  comment and a `"` inside a comment does not open a string. */
function stripped(code) {
  let out = "";
  let i = 0;
  const n = code.length;
  while (i < n) {
    const c = code[i];
    const next = code[i + 1];
    if (c === "/" && next === "/") {
      while (i < n && code[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      // Block comments nest in Rust.
      let depth = 0;
      do {
        if (code.startsWith("/*", i)) (depth++, (i += 2));
        else if (code.startsWith("*/", i)) (depth--, (i += 2));
        else i++;
      } while (i < n && depth > 0);
      out += " ";
    } else if ((c === "r" || (c === "b" && next === "r")) && /^b?r#*"/.test(code.slice(i, i + 260)) && !/[A-Za-z0-9_]/.test(code[i - 1] ?? "")) {
      // A raw string: r"…", r#"…"#, br"…", ended by the same number of #.
      const open = /^b?r(#*)"/.exec(code.slice(i, i + 260));
      const close = `"${open[1]}`;
      const end = code.indexOf(close, i + open[0].length);
      i = end < 0 ? n : end + close.length;
      out += '""';
    } else if (c === '"') {
      i++;
      while (i < n && code[i] !== '"') i += code[i] === "\\" ? 2 : 1;
      i++;
      out += '""';
    } else if (c === "'") {
      // A char literal ('"', '\'', '\u{…}'); a lifetime ('a) has no closing quote after one char.
      const m = /^'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'/.exec(code.slice(i, i + 12));
      if (m) {
        i += m[0].length;
        out += "' '";
      } else {
        out += c;
        i++;
      }
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Every `crate::a::b` / `super::a` path in the code (comments and strings stripped), expanded
 *  over `{…}` groups. */
function paths(code, self) {
  const text = stripped(code);
  const found = [];
  const re = /\b(crate|super)::((?:[a-z_][a-z0-9_]*::)*)(\{[^}]*\}|[a-z_][a-z0-9_]*)?/g;
  for (const m of text.matchAll(re)) {
    let base = m[1] === "crate" ? [] : self.split("::").slice(0, -1);
    const prefix = m[2].split("::").filter(Boolean);
    const tail = m[3] ?? "";
    const names = tail.startsWith("{") ? tail.slice(1, -1).split(",").map((s) => s.trim().split("::")[0]).filter((s) => /^[a-z_]/.test(s)) : [tail];
    for (const n of names) found.push([...base, ...prefix, n].filter(Boolean).join("::"));
    // `crate::a::{Type, …}` imports `a` itself, whatever the group names.
    if (tail.startsWith("{")) found.push([...base, ...prefix].filter(Boolean).join("::"));
  }
  return found;
}

function cycles(graph) {
  const found = [];
  const state = new Map();
  const stack = [];
  const visit = (n) => {
    state.set(n, 1);
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 1) found.push([...stack.slice(stack.indexOf(m)), m].join(" → "));
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return found;
}

let failed = false;
for (const crate of CRATES) {
  const dir = path.join(ROOT, crate);
  if (!fs.existsSync(dir)) continue;
  const files = rustFiles(dir);
  const modules = new Map(files.map((f) => [moduleOf(path.relative(dir, f)), f]));
  const fileGraph = new Map();
  const topGraph = new Map();
  let edges = 0;
  for (const [mod, file] of modules) {
    const code = fs.readFileSync(file, "utf8");
    const lines = code.split("\n").length;
    if (lines > MAX_LINES) {
      console.error(`${path.relative(ROOT, file)}: ${lines} lines (limit ${MAX_LINES})`);
      failed = true;
    }
    for (const p of paths(code, mod)) {
      const segs = p.split("::");
      let target = null;
      for (let i = segs.length; i > 0 && target === null; i--) if (modules.has(segs.slice(0, i).join("::"))) target = segs.slice(0, i).join("::");
      if (target === null || target === "" || target === mod || mod === "") continue;
      // A child module (tests, submodules) naming its parent is not a dependency of the parent.
      if (mod.startsWith(`${target}::`) && p === target) continue;
      if (!fileGraph.has(mod)) fileGraph.set(mod, new Set());
      if (!fileGraph.get(mod).has(target)) edges++;
      fileGraph.get(mod).add(target);
      const [a, b] = [mod.split("::")[0], target.split("::")[0]];
      if (a !== b) {
        if (!topGraph.has(a)) topGraph.set(a, new Set());
        topGraph.get(a).add(b);
      }
    }
  }
  const found = [...cycles(fileGraph), ...cycles(topGraph)];
  for (const c of found) console.error(`${crate}: import cycle: ${c}`);
  failed ||= found.length > 0;
  console.log(`${crate}: ${modules.size} modules, ${edges} imports, ${found.length ? `${found.length} cycles` : "no cycles"}`);
}
process.exit(failed ? 1 : 0);
