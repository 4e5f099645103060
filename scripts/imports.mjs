// Renames the wasm's imports to short names, in build/index_bg.wasm, in the named copy
// target/index_bg.named.wasm and in build/index.js, whose import object supplies them.
// wasm-bindgen names each import `__wbg_{name}_{16 hex digits of hash}`: about 160 of them, whose
// hashes gzip hardly at all (-3.4 KB gzip). Only the names change, not the order nor the module,
// so what each import is and does stays as it was. Run by scripts/build.sh on a fresh
// worker-build output: every name must be a key exactly once in index.js, or the build fails
// (a wasm-bindgen or worker-build whose JS names the imports elsewhere too is not renamed blind).
import { readFileSync, writeFileSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
const js = root + "build/index.js";
const wasms = [root + "build/index_bg.wasm", root + "target/index_bg.named.wasm"];

function fail(why) {
  console.error(`imports.mjs: ${why}`);
  process.exit(1);
}

function leb(buf, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = buf[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
}

function uleb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
}

const str = (s) => Buffer.concat([uleb(Buffer.byteLength(s)), Buffer.from(s)]);

// Short names in import order: a, b, …, Z, _, $, then two characters. All are JS identifiers,
// and none is `__proto__`.
const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$";
function short(i) {
  let s = "";
  do {
    s += ALPHABET[i % ALPHABET.length];
    i = Math.floor(i / ALPHABET.length);
  } while (i);
  return s;
}

/// The module with its import section rewritten by `rename(module, name, index)`; the names
/// found, in order.
function renameImports(buf, rename) {
  const names = [];
  const parts = [buf.subarray(0, 8)];
  let p = 8;
  while (p < buf.length) {
    const id = buf[p];
    const [size, body] = leb(buf, p + 1);
    const end = body + size;
    if (id !== 2) {
      parts.push(buf.subarray(p, end));
      p = end;
      continue;
    }
    let [count, q] = leb(buf, body);
    const out = [uleb(count)];
    for (let i = 0; i < count; i++) {
      let len;
      [len, q] = leb(buf, q);
      const module = buf.toString("utf8", q, q + len);
      q += len;
      [len, q] = leb(buf, q);
      const name = buf.toString("utf8", q, q + len);
      q += len;
      // The import's kind and type, copied as they are.
      const start = q;
      const kind = buf[q++];
      if (kind === 0) [, q] = leb(buf, q);
      else if (kind === 1 || kind === 2) {
        if (kind === 1) q++;
        let flags;
        [flags, q] = leb(buf, q);
        [, q] = leb(buf, q);
        if (flags & 1) [, q] = leb(buf, q);
      } else if (kind === 3) q += 2;
      else if (kind === 4) {
        q++;
        [, q] = leb(buf, q);
      } else fail(`import ${name} has an unknown kind ${kind}`);
      names.push(name);
      out.push(str(module), str(rename(module, name, i)), buf.subarray(start, q));
    }
    if (q !== end) fail("the import section did not end where its size says");
    const section = Buffer.concat(out);
    parts.push(Buffer.from([2]), uleb(section.length), section);
    p = end;
  }
  return [Buffer.concat(parts), names];
}

const shipped = readFileSync(wasms[0]);
if (shipped.readUInt32LE(0) !== 0x6d736100) fail(`${wasms[0]} is not a wasm module`);
const [, names] = renameImports(shipped, (_, name) => name);
let text = readFileSync(js, "utf8");
const renamed = new Map(names.map((name, i) => [name, short(i)]));
for (const [name, to] of renamed) {
  const word = new RegExp(`(?<![\\w$])${name.replace(/\$/g, "\\$")}(?![\\w$])`, "g");
  const found = text.match(word)?.length ?? 0;
  const key = new RegExp(`(?<![\\w$])${name.replace(/\$/g, "\\$")}:`);
  if (found !== 1 || !key.test(text)) {
    fail(`${name} is not a key exactly once in build/index.js (named ${found} times)`);
  }
  text = text.replace(key, () => `${to}:`);
}
for (const path of wasms) {
  const [out, seen] = renameImports(readFileSync(path), (_, name) => {
    const to = renamed.get(name);
    if (to === undefined) fail(`${path} imports ${name}, which build/index_bg.wasm does not`);
    return to;
  });
  if (seen.length !== names.length) fail(`${path} has ${seen.length} imports, not ${names.length}`);
  writeFileSync(path, out);
}
writeFileSync(js, text);
