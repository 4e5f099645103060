// /v1/openapi.json against what the worker really answers: every documented operation is
// exercised, and every answer's status and body must be the documented ones.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import Ajv2020 from "ajv/dist/2020.js";
import { startWorker } from "./harness.mjs";

let w;
let doc;
let ajv;
before(async () => {
  w = await startWorker({ GITHUB_WEBHOOK_SECRET: "s", ADMIN_TOKEN: "admin", READ_TOKEN_SECRET: "r".repeat(32) });
  const res = await w.get("/v1/openapi.json");
  assert.equal(res.status, 200);
  doc = res.body;
  ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema(doc, "openapi.json");
});
after(async () => {
  await w.close();
});

const deref = (obj) => (obj && obj.$ref ? obj.$ref.slice(2).split("/").reduce((o, k) => o[k], doc) : obj);
const sign = (body) => "sha256=" + createHmac("sha256", "s").update(body).digest("hex");
const hook = (body, extra = {}) => ({ method: "POST", body, headers: { "Content-Type": "application/json", "X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(body), ...extra } });
const admin = { method: "DELETE", headers: { Authorization: "Bearer admin" } };

// [documented path, concrete path, init]
const SCENARIOS = [
  ["/", "/", {}],
  ["/", "/", { method: "PUT" }],
  ["/v1/health", "/v1/health", {}],
  ["/v1/openapi.json", "/v1/openapi.json", {}],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/octocat/repos", {}],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/octocat/repos?fields=" + "name,owner,full_name,url,description,visibility,private,archived,disabled,fork,default_branch,pushed_at,updated_at,language,ci", {}],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/-bad/repos", {}],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/octocat/repos?fields=x", {}],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/nobody-here/repos", {}],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/octocat/repos", { headers: { Authorization: "Bearer nope" } }],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/octocat/repos", { method: "POST", body: "x" }],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/octocat/repos?ci=success,failure,none&sort=pushed_at&per_page=2&page=2", {}],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/octocat/repos?q=project&visibility=public", {}],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/octocat/repos?per_page=0", {}],
  ["/v1/orgs/{owner}/repos", "/v1/orgs/octocat/repos?page=1", {}],
  ["/v1/orgs/{owner}/summary", "/v1/orgs/octocat/summary", {}],
  ["/v1/orgs/{owner}/summary", "/v1/orgs/octocat/summary?ci=failure", {}],
  ["/v1/orgs/{owner}/summary", "/v1/orgs/octocat/summary", { method: "POST", body: "x" }],
  ["/v1/status", "/v1/status", { headers: { Authorization: "Bearer admin" } }],
  ["/v1/status", "/v1/status", {}],
  ["/v1/status", "/v1/status", { method: "POST", body: "x" }],
  ["/v1/orgs/{owner}/status", "/v1/orgs/octocat/status", { headers: { Authorization: "Bearer admin" } }],
  ["/v1/orgs/{owner}/status", "/v1/orgs/nobody-here/status", { headers: { Authorization: "Bearer admin" } }],
  ["/v1/orgs/{owner}/status", "/v1/orgs/-bad/status", { headers: { Authorization: "Bearer admin" } }],
  ["/v1/orgs/{owner}/status", "/v1/orgs/octocat/status", {}],
  ["/v1/orgs/{owner}/status", "/v1/orgs/octocat/status", { method: "POST", body: "x" }],
  ["/v1/orgs/{owner}/events", "/v1/orgs/octocat/events", {}],
  ["/v1/orgs/{owner}/events", "/v1/orgs/octocat/events?since=x", { headers: { Upgrade: "websocket" } }],
  ["/v1/orgs/{owner}/events", "/v1/orgs/-bad/events", { headers: { Upgrade: "websocket" } }],
  ["/v1/orgs/{owner}/events", "/v1/orgs/octocat/events", { headers: { Upgrade: "websocket", Authorization: "Bearer nope" } }],
  ["/v1/orgs/{owner}/events", "/v1/orgs/octocat/events", { method: "POST", body: "x" }],
  ["/v1/repos/{owner}/{repo}", "/v1/repos/octo-org/repo-0032?fields=name,ci,default_branch,pushed_at", {}],
  ["/v1/repos/{owner}/{repo}", "/v1/repos/octocat/project-0000", {}],
  ["/v1/repos/{owner}/{repo}", "/v1/repos/octocat/nope", {}],
  ["/v1/repos", "/v1/repos?names=octocat/project-0000,octocat/nope", {}],
  ["/v1/repos", "/v1/repos?names=" + Array.from({ length: 101 }, (_, i) => `o/r${i}`).join(","), {}],
  ["/v1/webhooks/github", "/v1/webhooks/github", hook('{"zen":"x"}')],
  ["/v1/webhooks/github", "/v1/webhooks/github", hook('{"zen":"x"}', { "X-Hub-Signature-256": "sha256=00" })],
  ["/v1/webhooks/github", "/v1/webhooks/github", hook("not json")],
  ["/v1/webhooks/github", "/v1/webhooks/github", hook(" ".repeat(1024 * 1024 + 1))],
  ["/v1/cache/orgs/{owner}", "/v1/cache/orgs/octocat", admin],
  ["/v1/cache/orgs/{owner}", "/v1/cache/orgs/octocat", { method: "DELETE" }],
  ["/v1/cache/repos/{owner}/{repo}", "/v1/cache/repos/octocat/project-0000", admin],
  ["/v1/cache/repos/{owner}/{repo}", "/v1/cache/repos/octocat/a%2Fb", admin],
];

test("every answer has a documented status and matches its documented schema", async () => {
  for (const [template, path, init] of SCENARIOS) {
    const method = (init.method ?? "GET").toLowerCase();
    const label = `${method.toUpperCase()} ${path.slice(0, 80)}`;
    const item = doc.paths[template];
    assert.ok(item, `${template} is documented`);
    const res = await w.get(path, init);
    const op = item[method] ?? Object.values(item)[0];
    const documented = deref(op.responses[String(res.status)]);
    assert.ok(documented, `${label}: status ${res.status} is documented`);
    const media = documented.content && Object.keys(documented.content)[0];
    if (!media) continue;
    assert.ok(res.headers.get("content-type").startsWith(media), `${label}: ${res.headers.get("content-type")} vs ${media}`);
    if (media !== "application/json") continue;
    const schema = documented.content[media].schema;
    const validate = schema.$ref ? ajv.getSchema(`openapi.json${schema.$ref}`) : ajv.compile(schema);
    assert.ok(validate(res.body), `${label}: ${ajv.errorsText(validate.errors)} in ${res.text.slice(0, 200)}`);
  }
});

test("every documented operation has a scenario", () => {
  const covered = new Set(SCENARIOS.map(([t, , init]) => `${(init.method ?? "GET").toLowerCase()} ${t}`));
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item)) {
      assert.ok(covered.has(`${method} ${template}`), `${method.toUpperCase()} ${template} is never exercised`);
    }
  }
});

test("the document served passes a standard OpenAPI linter (Redocly, recommended rules)", async () => {
  const { lint, loadConfig } = await import("@redocly/openapi-core");
  const { mkdtempSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const config = await loadConfig({ configPath: undefined });
  const served = await w.get("/v1/openapi.json");
  const file = `${mkdtempSync(`${tmpdir()}/forgelens-openapi-`)}/openapi.json`;
  writeFileSync(file, served.text);
  // One known exception: a WebSocket upgrade succeeds with 101, never a 2xx (OpenAPI has no
  // way to describe the socket itself; its messages are the EventMessage schema).
  const upgrade = (p) => p.ruleId === "operation-2xx-response" && p.location?.[0]?.pointer === "#/paths/~1v1~1orgs~1{owner}~1events/get/responses";
  const problems = (await lint({ ref: file, config })).filter((p) => !upgrade(p));
  const shown = problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} ${p.location?.[0]?.pointer ?? ""}`);
  assert.deepEqual(shown, [], "no error and no warning");
});
