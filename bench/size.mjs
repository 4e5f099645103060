// What each crate / part costs in the worker's wasm: writes bench/size-breakdown.json (rendered into
// BENCHMARKS.md by bench/run.mjs) and prints the same table. Builds nothing (scripts/build.sh does).
//
//   node bench/size.mjs [target/index_bg.named.wasm] [build/index_bg.wasm]
//
// The shipped wasm has no names, so functions are attributed in the named copy build.sh keeps and
// each group's share of it is applied to the shipped gzip size. When the named copy is the shipped
// module plus a name section (wasm-opt -Oz -g), raw bytes are the shipped bytes; otherwise (e.g.
// worker-build's unoptimised output) they are that build's own and only the shares carry over.
// Attribution rules, in order (see `attribute`):
//  1. wasm-bindgen's generated shims (`… externref shim`, `… catch wrapper`, `__wbg_*`, exports
//     without a path) and the import/export sections are "wasm-bindgen glue".
//  2. A path `a::b::c` belongs to crate `a`; `forgelens` is split by its top module.
//  3. `<A as B>::f` belongs to A's crate, unless A is a std type, a primitive or a generic
//     parameter (`T`, `&T`, `str`, `[T]`) and B is not a std trait: then B's crate
//     (`<T as base64ct::Encoding>::encode` is base64ct, `<String as serde::Serialize>` is serde).
//  4. Generic code instantiated for other crates' types stays with the crate that wrote it
//     (`Vec<forgelens::X>::push` is std; serde's `Option<T>::deserialize` is serde even when the
//     optimizer inlined serde_json and derived visitors into it). `drop_in_place<T>` goes to the
//     crate of T's outer type: drop glue has no source of its own.
//  5. Adapters that only poll/call an opaque future or closure (`AssertUnwindSafe<F>::poll`,
//     `FnOnce::call_once`, js-sys's `future_to_promise` closures) end up holding the inlined async
//     body, so they go to the group most of their direct callees belong to (call graph from
//     binaryen's wasm-opt when it is installed; rule skipped otherwise).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { gzipSize } from "./common.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const namedPath = process.argv[2] ?? `${root}target/index_bg.named.wasm`;
const shippedPath = process.argv[3] ?? `${root}build/index_bg.wasm`;
for (const [what, p] of [["named", namedPath], ["shipped", shippedPath]]) {
  if (!existsSync(p)) {
    console.error(`size.mjs: the ${what} wasm ${p} is missing; build it with \`bash scripts/build.sh\` (it writes both).`);
    process.exit(1);
  }
}

// --- the binary: sections, function bodies, names -------------------------------------------
function parse(buf) {
  if (buf.length < 8 || buf.readUInt32LE(0) !== 0x6d736100) throw new Error("not a wasm module (bad magic)");
  let p = 8;
  const leb = () => { let r = 0, s = 0, x; do { x = buf[p++]; r += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80); return r; };
  const str = () => { const n = leb(); p += n; return buf.toString("utf8", p - n, p); };
  const limits = () => { const f = leb(); leb(); if (f & 1) leb(); };
  const m = { sections: [], imported: 0, bodies: [], names: new Map(), codeFraming: 0 };
  while (p < buf.length) {
    const start = p, id = buf[p++], size = leb(), end = p + size;
    const s = { id, start, end, bytes: end - start, name: id === 0 ? str() : null };
    m.sections.push(s);
    if (id === 2) { // imports: only function imports take function indices
      for (let n = leb(); n > 0; n--) {
        str(); str();
        const kind = buf[p++];
        if (kind === 0) { leb(); m.imported++; } else if (kind === 1) { p++; limits(); } else if (kind === 2) limits();
        else if (kind === 3) p += 2; else if (kind === 4) { p++; leb(); }
      }
    } else if (id === 10) { // code: each body counted with its own size prefix
      for (let n = leb(); n > 0; n--) { const at = p, len = leb(); p += len; m.bodies.push({ start: at, end: p }); }
      m.codeFraming = s.bytes - m.bodies.reduce((t, b) => t + b.end - b.start, 0);
    } else if (id === 0 && s.name === "name") { // subsection 1: function index -> name
      while (p < end) {
        const sub = buf[p++], len = leb(), subEnd = p + len;
        if (sub === 1) for (let n = leb(); n > 0; n--) { const i = leb(); m.names.set(i, str()); }
        p = subEnd;
      }
    }
    p = end;
  }
  return m;
}

// --- names -> groups ------------------------------------------------------------------------
const STD_ROW = "Rust std (core/alloc/std)";
const STD = ["core", "alloc", "std", "hashbrown", "compiler_builtins", "__rustc", "panic_abort", "std_detect", "rustc_demangle"];
const GROUPS = [ // [row, crates]; crates not listed go to "other crates"
  ["serde_json", ["serde_json", "itoa", "zmij", "ryu", "memchr"]],
  ["serde", ["serde", "serde_core", "serde_derive"]],
  ["worker (workers-rs)", ["worker", "worker_sys", "worker_macros", "wasm_streams", "matchit", "serde_wasm_bindgen"]],
  ["wasm-bindgen (+ js-sys, web-sys, wasm-bindgen-futures)", ["wasm_bindgen", "wasm_bindgen_futures", "js_sys", "web_sys"]],
  ["futures", ["futures", "futures_util", "futures_core", "futures_task", "futures_channel", "futures_executor", "pin_utils", "slab"]],
  ["sha2/hmac/digest/subtle/base64ct", ["sha2", "hmac", "digest", "subtle", "base64ct", "block_buffer", "crypto_common", "generic_array", "typenum"]],
  [STD_ROW, STD],
  ["dlmalloc", ["dlmalloc"]],
];
const groupOfCrate = new Map(GROUPS.flatMap(([g, cs]) => cs.map((c) => [c, g])));
const isStd = (crate) => groupOfCrate.get(crate) === STD_ROW;
const FL_MODULES = ["http", "service", "owners", "forge", "cache", "shell", "auth"];
const GLUE = "wasm-bindgen glue (shims, imports, exports)";

const clean = (n) => n.replace(/\[[0-9a-f]{16}\]/g, "").replace(/::h[0-9a-f]{16}$/, "").replace(/\[\d+\]$/, "");
// Brackets of `<A as B>`: `->` in fn types is not one. Returns [A, B|null, index of the closing `>`].
function impl(s) {
  for (let i = 0, d = 0, as = -1; i < s.length; i++) {
    if (s[i] === "<") d++;
    else if (s[i] === ">" && s[i - 1] !== "-" && --d === 0) return as < 0 ? [s.slice(1, i), null, i] : [s.slice(1, as), s.slice(as + 4, i), i];
    else if (d === 1 && as < 0 && s.startsWith(" as ", i)) as = i;
  }
  return [s, null, -1];
}
// Owner of a type or path ({ crate, path }), or null for primitives and generic parameters.
function ownerOfPath(t) {
  t = t.replace(/^(&(mut )?|\*(const|mut) |dyn |impl )+/, "");
  if (t.startsWith("<")) return ownerOfName(t);
  const m = /^([A-Za-z_]\w*)::/.exec(t);
  return m ? { crate: m[1], path: t } : null; // not `T`, `str`, `u8`, `[T]`, `(U,T)`, `fn(..)`
}
function ownerOfName(n) {
  const drop = /^core::ptr::drop_in_place<(.*)>$/.exec(n);
  if (drop) return ownerOfPath(drop[1]) ?? { crate: "core", path: n };
  if (!n.startsWith("<")) return ownerOfPath(n);
  const [a, b] = impl(n);
  const oa = ownerOfPath(a), ob = b && ownerOfPath(b);
  if ((!oa || isStd(oa.crate)) && ob && !isStd(ob.crate)) return ob;
  return oa ?? ob ?? { crate: "core", path: n }; // inherent impls on primitives (`<str>::…`) are std
}
function attribute(raw) {
  if (raw == null) return { group: "unattributed", crate: "(no name)" };
  if (/ (externref|multivalue) shim$| catch wrapper$/.test(raw) || /^(__wbg|__wbindgen|__externref)/.test(raw)) return { group: GLUE, crate: "(generated)" };
  const n = clean(raw);
  if (!n.includes("::") && !n.startsWith("<")) { // compiler-builtins are std; other bare names are exported entry points
    return /^(__|mem(cpy|move|set|cmp)$)/.test(n) ? { group: STD_ROW, crate: "compiler_builtins" } : { group: GLUE, crate: "(exports)" };
  }
  const o = ownerOfName(n);
  if (!o) return { group: "unattributed", crate: "(no path)" };
  if (o.crate !== "forgelens") return { group: groupOfCrate.get(o.crate) ?? "other crates", crate: o.crate };
  const mod = /^forgelens::(\w+)/.exec(o.path)?.[1];
  return FL_MODULES.includes(mod) ? { group: `forgelens::${mod}`, crate: "forgelens" } : { group: "forgelens (other)", crate: `forgelens::${mod ?? "(root)"}` };
}
const ADAPTER = /^<core::(panic::unwind_safe::AssertUnwindSafe<F>|pin::Pin<P>|future::poll_fn::PollFn<F>) as |^core::ops::function::(FnOnce|FnMut|Fn)::call|\{\{vtable\.shim\}\}|^(js_sys::futures|wasm_bindgen_futures)::\w+::\{\{closure\}\}/;

// --- measure --------------------------------------------------------------------------------
const named = readFileSync(namedPath), shipped = readFileSync(shippedPath);
const m = parse(named), s = parse(shipped);
if (m.names.size === 0) {
  console.error(`size.mjs: ${namedPath} has no function names (name section); pass the copy build.sh keeps them in.`);
  process.exit(1);
}
const shippedGzip = gzipSize(shipped);
const fns = m.bodies.map((b, i) => {
  const name = m.names.get(m.imported + i) ?? null;
  return { name, bytes: named.subarray(b.start, b.end), ...attribute(name) };
});

// Rule 5, with the call graph binaryen prints (a few seconds on one core).
let refined = "adapters not re-homed (no node_modules/.bin/wasm-opt)", dot = "";
try {
  const wasmOpt = `${root}node_modules/.bin/wasm-opt`;
  if (existsSync(wasmOpt)) dot = execFileSync(wasmOpt, ["--all-features", "--print-call-graph", namedPath], { maxBuffer: 1 << 28, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
} catch (e) {
  refined = `adapters not re-homed (wasm-opt --print-call-graph failed: ${e.message.split("\n")[0]})`;
}
if (dot) {
  const byName = new Map(fns.filter((f) => f.name).map((f) => [f.name, f]));
  const callees = new Map();
  for (const [, from, to] of dot.matchAll(/^\s*"(.*)" -> "(.*)"; \/\/ call$/gm)) (callees.get(from) ?? callees.set(from, []).get(from)).push(to);
  let moved = 0;
  for (const f of fns.filter((f) => f.name && ADAPTER.test(clean(f.name)))) {
    const votes = new Map(); // group -> [calls, a crate in it]
    for (const c of callees.get(f.name) ?? []) {
      const { group, crate } = byName.get(c) ?? attribute(c);
      if (group !== STD_ROW && group !== GLUE && group !== f.group) votes.set(group, [(votes.get(group)?.[0] ?? 0) + 1, crate]);
    }
    const best = [...votes].sort((x, y) => y[1][0] - x[1][0])[0];
    if (best) { f.group = best[0]; f.crate = `${best[1][1]} via adapters`; moved += f.bytes.length; }
  }
  refined = `${moved} bytes of adapters re-homed by their callees`;
}

const rows = new Map();
const row = (name) => rows.get(name) ?? rows.set(name, { name, raw: 0, parts: [], crates: new Map(), fns: [] }).get(name);
for (const f of fns) {
  const r = row(f.group);
  r.raw += f.bytes.length; r.parts.push(f.bytes); r.fns.push(f);
  r.crates.set(f.crate, (r.crates.get(f.crate) ?? 0) + f.bytes.length);
}
const section = (mod, id, name) => mod.sections.filter((x) => x.id === id && (name === undefined || x.name === name));
const sum = (xs) => xs.reduce((t, x) => t + x.bytes, 0);
const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;

// Data: the two include_str! files (found verbatim?), panic-location file paths, the rest.
const data = section(m, 11)[0] ?? { start: 0, end: 0, bytes: 0 };
const dataBytes = named.subarray(data.start, data.end);
const dataNotes = [];
let known = 0;
for (const f of ["src/openapi.json", "src/dashboard/index.html"]) {
  const text = readFileSync(`${root}${f}`), found = dataBytes.indexOf(text) >= 0;
  const ws = f.endsWith(".json") ? `, ${text.length - JSON.stringify(JSON.parse(text)).length} B of it whitespace` : "";
  dataNotes.push(`${f} ${found ? `${text.length} B verbatim${ws}` : "not found verbatim"}`);
  if (found) known += text.length;
}
const paths = [...new Set(dataBytes.toString("latin1").match(/[\w/.-]+\.rs/g) ?? [])];
const pathBytes = paths.reduce((t, x) => t + x.length, 0);
const prefixes = paths.reduce((t, x) => t + (/^.*\/registry\/src\/[^/]+\//.exec(x)?.[0].length ?? 0), 0);
dataNotes.push(`${paths.length} panic-location paths ${pathBytes} B (${prefixes} B of it cargo registry prefixes)`, `other strings and tables ${data.bytes - known - pathBytes} B`);
Object.assign(row("data segments (static strings, tables)"), { raw: data.bytes, parts: [dataBytes], note: dataNotes.join("; ") });

const glue = row(GLUE), boundary = [...section(m, 2), ...section(m, 7)];
for (const x of boundary) { glue.raw += x.bytes; glue.parts.push(named.subarray(x.start, x.end)); }
const structure = m.sections.filter((x) => ![2, 7, 10, 11].includes(x.id) && x.name !== "name");
Object.assign(row("module structure (types, tables, globals, framing)"), {
  raw: 8 + sum(structure) + m.codeFraming, // 8: magic and version
  parts: structure.map((x) => named.subarray(x.start, x.end)),
  note: "wasm header, type/function/table/memory/global/element sections, producers, section headers",
});

// Notes: the crates or modules in a row and its largest functions; for std, what it is made of
// (first matching kind, so the parts do not overlap).
const STD_KINDS = [
  ["float formatting", /flt2dec|fmt::float|bignum|diy_float|<f(32|64) as /], ["fmt", /fmt|Formatter|Display|Debug/],
  ["drop glue", /drop_in_place|Drop>::drop|drop_slow/], ["BTreeMap", /btree/], ["HashMap", /hashbrown/], ["sort", /sort/],
  ["Vec/iter", /alloc::vec|raw_vec|from_iter|Iterator|try_fold|extend|collect|into_boxed_slice/], ["str/utf8", /str|utf8|char|unicode/], ["panic", /panic|abort|default_hook/],
];
const tally = (pairs) => [...pairs.reduce((m, [k, b]) => m.set(k, (m.get(k) ?? 0) + b), new Map())].sort((a, b) => b[1] - a[1]);
for (const r of rows.values()) {
  if (r.note || !r.fns.length) continue;
  const crates = tally([...r.crates]).slice(0, 4).map(([c, b]) => `${c} ${kib(b)}`).join(", ");
  const largest = tally(r.fns.map((f) => [clean(f.name ?? "(no name)").slice(0, 80), f.bytes.length])).slice(0, 2);
  r.note = `${r.fns.length} fns: ${crates}; largest names: ${largest.map(([n, b]) => `\`${n}\` ${kib(b)}`).join(", ")}`;
  if (r.name === STD_ROW) r.note += `; by kind: ${tally(r.fns.map((f) => [STD_KINDS.find(([, re]) => re.test(f.name ?? ""))?.[0] ?? "rest", f.bytes.length])).map(([k, b]) => `${k} ${kib(b)}`).join(", ")}`;
}
if (rows.has(GLUE)) rows.get(GLUE).note += `; import+export sections ${kib(sum(boundary))}; get/set/free shims of workers-rs' exported structs ${kib(glue.fns.filter((f) => /^__wbg_([gs]et_|\w+_free$)/.test(f.name)).reduce((t, f) => t + f.bytes.length, 0))}`;

// --- totals, estimated gzip (largest-remainder rounding so the rows add up exactly) ----------
const list = [...rows.values()].filter((r) => r.raw > 0).sort((a, b) => b.raw - a.raw);
const totalRaw = list.reduce((t, r) => t + r.raw, 0);
const nameSection = sum(section(m, 0, "name"));
if (totalRaw + nameSection !== named.length) throw new Error(`rows ${totalRaw} B + name section ${nameSection} B != ${named.length} B`);
const exact = list.map((r) => (r.raw / totalRaw) * shippedGzip);
list.forEach((r, i) => (r.gzip = Math.floor(exact[i])));
const byRemainder = list.map((_, i) => i).sort((a, b) => (exact[b] % 1) - (exact[a] % 1));
for (let left = shippedGzip - list.reduce((t, r) => t + r.gzip, 0), i = 0; left > 0; left--, i++) list[byRemainder[i]].gzip++;
if (list.reduce((t, r) => t + r.gzip, 0) !== shippedGzip) throw new Error("estimated gzip rows do not add up");

const same = totalRaw === shipped.length;
const doc = {
  method:
    `Functions attributed to crates by their names in ${same ? "the named build (the shipped module plus a name section: wasm-opt -Oz -g)" : "the named build (not the shipped module: raw is its bytes, scaled below)"}; rules in bench/size.mjs. ` +
    "raw = bytes of each row's function bodies, or of its sections (data, imports/exports, the rest); name section excluded. " +
    "gzip = estimate: the row's share of raw x the shipped wasm's gzip -9 size (assumes gzip shrinks every part alike). " +
    "gzip_alone = the row's bytes gzipped -9 on their own (not additive).",
  date: new Date().toISOString().slice(0, 10),
  total: {
    raw: totalRaw, gzip: shippedGzip, named_file: named.length, named_name_section: nameSection, named_functions: fns.length,
    shipped_file: shipped.length, shipped_functions: s.bodies.length, named_is_shipped_plus_names: same, adapters: refined,
  },
  crates: list.map((r) => ({ name: r.name, raw: r.raw, gzip: r.gzip, gzip_alone: gzipSync(Buffer.concat(r.parts), { level: 9 }).length, share: +((100 * r.raw) / totalRaw).toFixed(2), note: r.note ?? "" })),
};
writeFileSync(`${root}bench/size-breakdown.json`, JSON.stringify(doc, null, 2) + "\n");

const w = Math.max(...doc.crates.map((r) => r.name.length));
const line = (a, ...cols) => console.log(`${a.padEnd(w)} ${cols.map((c, i) => String(c).padStart(i === 1 ? 6 : 10)).join(" ")}`);
line("group", "raw", "share", "~gzip", "gzip alone");
for (const r of doc.crates) line(r.name, kib(r.raw), `${r.share.toFixed(1)}%`, kib(r.gzip), kib(r.gzip_alone));
line("total (rows add up)", kib(totalRaw), "100%", kib(shippedGzip), "");
console.log(`\nnamed ${named.length} B (name section ${nameSection} B${same ? ", otherwise the shipped module" : ""}), shipped ${shipped.length} B, gzip -9 ${shippedGzip} B; ${refined}`);
for (const r of doc.crates) console.log(`- ${r.name}: ${r.note}`);
console.log("\nwrote bench/size-breakdown.json");
