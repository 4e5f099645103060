// Every parameter /v1/openapi.json describes, against what the worker accepts: for each one,
// values at the edges of its schema (read from the served description) must not be refused as
// invalid, and values just outside it must be refused with the parameter's error code. A contract
// tester generating requests from the description then never meets a 400 for a request the
// description calls valid, and this file fails when schema and server drift apart.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import Ajv2020 from "ajv/dist/2020.js";
import { startWorker } from "./harness.mjs";

let w;
let doc;
const ajv = new Ajv2020({ strict: false, validateFormats: false });
before(async () => {
  w = await startWorker({ ADMIN_TOKEN: "admin" });
  const res = await w.get("/v1/openapi.json");
  assert.equal(res.status, 200);
  doc = res.body;
});
after(async () => {
  await w.close();
});

const deref = (obj) => (obj?.$ref ? obj.$ref.slice(2).split("/").reduce((o, k) => o[k], doc) : obj);
/** The parameter `name` of an operation, resolved. */
function param(path, method, name) {
  const found = doc.paths[path][method].parameters.map(deref).find((p) => p.name === name);
  assert.ok(found, `${method.toUpperCase()} ${path} documents ${name}`);
  return found;
}
/** Whether the description admits `raw` (as sent, before percent-encoding) for parameter `p`. */
function admits(p, raw) {
  const schema = p.schema;
  let value = raw;
  if (schema.type === "array") {
    assert.equal(p.explode, false, `${p.name}: a list travels as one comma-separated value`);
    value = raw.split(",");
  } else if (schema.type === "integer") {
    value = /^-?[0-9]+$/.test(raw) ? Number(raw) : raw;
  }
  return ajv.validate(schema, value);
}
/** The error code a refused value of this parameter answers. */
const codeOf = (name) => ({ fields: "invalid_fields", names: "invalid_name", owner: "invalid_name", repo: "invalid_name" })[name] ?? "invalid_parameter";

/**
 * Cases a schema implies: `[raw, admitted]` pairs at and just past its edges — enum items alone,
 * all at once, repeated and mistyped; numeric bounds and one past them; lengths at their bounds
 * and one past, in ASCII and in multi-byte characters (lengths count characters).
 */
function edges(p) {
  const s = p.schema;
  const out = [];
  if (s.type === "array") {
    const items = s.items.enum;
    for (const v of items) out.push([v, true]);
    out.push([items.join(","), true], [[...items].reverse().join(","), true]);
    out.push([`${items[0]},${items[0]}`, s.maxItems >= 2]);
    out.push(["", false], [`${items[0]},`, false], [`,${items[0]}`, false], [`${items[0]},,${items[0]}`, false]);
    out.push([items[0].toUpperCase(), false], [`${items[0]}x`, false], [`${items.join(",")},nope`, false]);
  } else if (s.enum) {
    for (const v of s.enum) out.push([v, true], [v.toUpperCase(), v.toUpperCase() === v], [`${v}x`, false]);
    out.push(["", false]);
  } else if (s.type === "integer") {
    // Unbounded, a generator would send numbers past anything the worker counts to.
    assert.ok(Number.isInteger(s.minimum) && Number.isInteger(s.maximum), `${p.name}: integer bounds`);
    out.push([String(s.minimum), true], [String(s.minimum + 1), true], [String(s.maximum), true]);
    out.push([String(s.minimum - 1), false], [String(s.maximum + 1), false], ["1.5", false], ["-1", false], ["1e3", false], ["x", false], ["", false]);
  } else if (s.type === "string" && !s.pattern) {
    // Unbounded, a generator would send texts past the worker's 8 KiB query limit.
    assert.ok(s.minLength >= 1 && Number.isInteger(s.maxLength), `${p.name}: length bounds`);
    for (const ch of ["x", "é", "✓", "😀"]) {
      out.push([ch.repeat(s.minLength), true], [ch.repeat(s.maxLength), true], [ch.repeat(s.maxLength + 1), false]);
    }
    out.push(["x".repeat(s.minLength - 1), false], [" ".repeat(s.maxLength), true], ["C++ & #1", true]);
  }
  assert.ok(out.length > 0, `${p.name}: no cases derived from ${JSON.stringify(s)}`);
  return out;
}

/**
 * Sends each case `[raw, admitted, { code, lenient }?]`; checks the description's verdict is the
 * one expected, then the worker's: not 400 when admitted, else 400 with `code` (the parameter's
 * own by default), or — `lenient` saying why — accepted though outside the description.
 */
async function check(p, cases, send) {
  for (const [raw, admitted, { code = codeOf(p.name), lenient } = {}] of cases) {
    const label = `${p.name}=${raw.length > 60 ? `${raw.slice(0, 60)}… (${raw.length} characters)` : JSON.stringify(raw)}`;
    assert.equal(admits(p, raw), admitted, `${label}: the description ${admitted ? "refuses" : "admits"} it`);
    const res = await send(raw);
    assert.ok(res.status < 500, `${label}: ${res.status} ${res.text.slice(0, 200)}`);
    if (admitted) {
      assert.notEqual(res.status, 400, `${label} is described as valid but refused: ${res.text.slice(0, 200)}`);
    } else if (lenient) {
      // Outside the description but accepted by the worker, for the reason `lenient` gives.
      assert.notEqual(res.status, 400, `${label} (${lenient}): ${res.text.slice(0, 200)}`);
    } else {
      assert.equal(res.status, 400, `${label} is described as invalid but answered ${res.status}`);
      assert.equal(res.body.error.code, code, label);
    }
  }
}

/**
 * A list longer than its set of values only repeats one: the description stops at the set (which
 * bounds the query's length), the worker lets the repeat collapse.
 */
function beyondTheSet(p) {
  if (p.schema.type !== "array") return [];
  const all = p.schema.items.enum;
  return [[[...all, all[0]].join(","), false, { lenient: "a repeat collapses" }]];
}

/** `n` distinct names, equally long, filling exactly `chars` characters (the most separators). */
function fill(n, chars) {
  const each = Math.floor((chars - (n - 1)) / n);
  const names = Array.from({ length: n }, (_, i) => `o/${String(i).padStart(each - 2, "r")}`);
  names[n - 1] += "r".repeat(chars - names.join(",").length);
  const text = names.join(",");
  assert.equal(text.length, chars);
  return text;
}

const LISTING = "/v1/orgs/{owner}/repos";
const listingQuery = (name, raw) => `/v1/orgs/octocat/repos?${name}=${encodeURIComponent(raw)}`;

test("every listing parameter: its schema's edges pass, one step past them is 400 invalid_parameter", async () => {
  const get = doc.paths[LISTING].get;
  const names = get.parameters.map(deref).filter((p) => p.in === "query" && p.name !== "fields").map((p) => p.name);
  assert.deepEqual(names, ["visibility", "archived", "fork", "ci", "language", "q", "sort", "direction", "per_page", "page"]);
  for (const name of names) {
    const p = param(LISTING, "get", name);
    await check(p, [...edges(p), ...beyondTheSet(p)], (raw) => w.get(listingQuery(name, raw)));
  }
});

test("page alone pages by 100, as per_page=100 would, up to the described maximum", async () => {
  const max = param(LISTING, "get", "page").schema.maximum;
  for (const page of [1, 2, max]) {
    const alone = await w.get(`/v1/orgs/octocat/repos?page=${page}`);
    const explicit = await w.get(`/v1/orgs/octocat/repos?per_page=100&page=${page}`);
    assert.equal(alone.status, 200, alone.text);
    assert.equal(alone.body.per_page, 100);
    assert.equal(alone.body.page, page);
    assert.deepEqual(alone.body, explicit.body);
    assert.equal(alone.headers.get("link"), explicit.headers.get("link"));
    assert.ok(alone.headers.get("link").includes("per_page=100&page=1>; rel=\"first\""));
  }
});

test("fields on every route that takes it: allow-listed items pass, anything else is 400 invalid_fields", async () => {
  const routes = [
    [LISTING, (q) => `/v1/orgs/octocat/repos?${q}`],
    ["/v1/repos/{owner}/{repo}", (q) => `/v1/repos/octocat/project-0000?${q}`],
    ["/v1/repos", (q) => `/v1/repos?names=octocat/project-0000&${q}`],
  ];
  for (const [path, url] of routes) {
    const p = param(path, "get", "fields");
    await check(p, [...edges(p), ...beyondTheSet(p)], (raw) => w.get(url(`fields=${encodeURIComponent(raw)}`)));
  }
});

test("names: what its pattern and lengths admit passes, empty, malformed or 101 names are refused", async () => {
  const p = param("/v1/repos", "get", "names");
  const { maxLength, minLength } = p.schema;
  const o39 = "o".repeat(39);
  const r100 = "r".repeat(100);
  const distinct = (n) => Array.from({ length: n }, (_, i) => `o/r${i}`).join(",");
  const longest = fill(100, maxLength);
  const cases = [
    ["a/b", true],
    ["A/B,a/b", true],
    [`${o39}/${r100}`, true],
    ["o/...", true],
    ["o/.a", true],
    ["o/a.", true],
    ["o/_-", true],
    ["0-0/0.0_0-0", true],
    [distinct(100), true],
    [longest, true],
    ["", false],
    ["a", false],
    ["a/", false],
    ["/b", false],
    ["a/b,", false],
    [",a/b", false],
    ["a/b,,c/d", false],
    ["o/.", false],
    ["o/..", false],
    ["o/./", false],
    ["-o/r", false],
    ["o_o/r", false],
    [`${o39}o/r`, false],
    [`o/${r100}r`, false],
    ["o/r/x", false],
    ["o/r r", false],
    ["o/✓", false],
    [distinct(101), false, { code: "too_many_names" }],
    [`${distinct(100)},o/r0`, false, { lenient: "the 100 limit counts distinct names" }],
    [`${longest}r`, false, { lenient: "the worker's bound is the query's 8 KiB, which this fits" }],
  ];
  assert.ok(cases.some(([raw, ok]) => ok === true && raw.length === minLength), "the shortest name is a case");
  await check(p, cases, (raw) => w.get(`/v1/repos?names=${encodeURIComponent(raw)}`));
});

test("owner and repo path segments: what their patterns admit passes, anything else is 400 invalid_name", async () => {
  const owner = param("/v1/cache/repos/{owner}/{repo}", "delete", "owner");
  const repo = param("/v1/cache/repos/{owner}/{repo}", "delete", "repo");
  const admin = { method: "DELETE", headers: { Authorization: "Bearer admin" } };
  // Path segments are not percent-decoded: each value is sent as it is.
  await check(owner, [
    ["a", true], ["0", true], ["A-b-0", true], ["o".repeat(owner.schema.maxLength), true],
    ["o".repeat(owner.schema.maxLength + 1), false], ["-a", false], ["a_b", false], ["a.b", false], ["%41", false],
  ], (raw) => w.get(`/v1/cache/repos/${raw}/r`, admin));
  await check(repo, [
    ["r", true], ["...", true], [".a", true], ["..a", true], ["a.", true], ["_", true], ["-", true], ["r".repeat(repo.schema.maxLength), true],
    ["r".repeat(repo.schema.maxLength + 1), false], ["a%2Fb", false], ["a~b", false], ["a+b", false],
  ], (raw) => w.get(`/v1/cache/repos/o/${raw}`, admin));
  // "." and ".." cannot travel as path segments (URLs resolve them); the description refuses them too.
  for (const raw of [".", ".."]) assert.equal(admits(repo, raw), false, raw);
});

test("the longest requests the description admits fit the worker's 8 KiB query limit", async () => {
  // Every ',' and '/' percent-encoded, every character of free text four bytes of UTF-8.
  const longestItems = (p) => {
    const longest = p.schema.items.enum.reduce((a, b) => (b.length > a.length ? b : a));
    return Array(p.schema.maxItems).fill(longest).join(",");
  };
  const fields = param("/v1/repos", "get", "fields");
  const names = param("/v1/repos", "get", "names");
  const names100 = fill(100, names.schema.maxLength);
  assert.ok(admits(names, names100) && admits(fields, longestItems(fields)));
  const batch = `/v1/repos?names=${encodeURIComponent(names100)}&fields=${encodeURIComponent(longestItems(fields))}`;
  const res = await w.get(batch);
  assert.ok(res.status !== 400 && res.status < 500, `${batch.length} bytes: ${res.status} ${res.text.slice(0, 200)}`);

  const get = doc.paths[LISTING].get;
  const parts = get.parameters.map(deref).filter((p) => p.in === "query").map((p) => {
    const s = p.schema;
    let raw;
    if (s.type === "array") raw = longestItems(p);
    else if (s.enum) raw = s.enum.reduce((a, b) => (b.length > a.length ? b : a));
    else if (s.type === "integer") raw = String(s.maximum);
    else raw = "😀".repeat(s.maxLength);
    assert.ok(admits(p, raw), `${p.name}=${raw.slice(0, 40)}`);
    return `${p.name}=${encodeURIComponent(raw)}`;
  });
  const listing = `/v1/orgs/octocat/repos?${parts.join("&")}`;
  const answer = await w.get(listing);
  assert.ok(answer.status !== 400 && answer.status < 500, `${listing.length} bytes: ${answer.status} ${answer.text.slice(0, 200)}`);
});
