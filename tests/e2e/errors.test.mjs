// Every bad input from DESIGN.md answers its 4xx JSON error without reaching GitHub; upstream
// garbage answers 502 and is never cached; configuration errors name the variable.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, rateKey } from "./harness.mjs";

const ADMIN = "e2e-admin-token";
let w;
before(async () => {
  w = await startWorker({ ALLOWED_ORIGINS: "https://dash.example", ADMIN_TOKEN: ADMIN });
});
after(async () => {
  await w.close();
});

const long = (n) => "a".repeat(n);
const BAD = [
  // [path, status, code, init?]
  ["/v1/orgs/-octo/repos", 400, "invalid_name"],
  ["/v1/orgs/octo_org/repos", 400, "invalid_name"],
  [`/v1/orgs/${long(40)}/repos`, 400, "invalid_name"],
  ["/v1/orgs/oct%C3%B6/repos", 400, "invalid_name"],
  ["/v1/repos/octo/a%2Fb", 400, "invalid_name"],
  ["/v1/repos/octo/a%20b", 400, "invalid_name"],
  [`/v1/repos/octo/${long(101)}`, 400, "invalid_name"],
  ["/v1/repos/octo/<script>", 400, "invalid_name"],
  ["/v1/repos", 400, "invalid_name"],
  ["/v1/repos?names=", 400, "invalid_name"],
  ["/v1/repos?names=a/b,,c/d", 400, "invalid_name"],
  ["/v1/repos?names=a/b,", 400, "invalid_name"],
  ["/v1/repos?names=a/b&names=c/d", 400, "invalid_name"],
  ["/v1/repos?names=a", 400, "invalid_name"],
  ["/v1/repos?names=a/b/c", 400, "invalid_name"],
  ["/v1/repos?names=a/..", 400, "invalid_name"],
  ["/v1/repos?names=a%2Fb,-x%2Fy", 400, "invalid_name"],
  ["/v1/orgs/octocat/repos?fields=", 400, "invalid_fields"],
  ["/v1/orgs/octocat/repos?fields=name,token", 400, "invalid_fields"],
  ["/v1/orgs/octocat/repos?fields=name,", 400, "invalid_fields"],
  ["/v1/repos/octocat/project-0000?fields=node_id", 400, "invalid_fields"],
  ["/v1/orgs/octocat/repos?fields=name&fields=ci", 400, "invalid_fields"],
  ["/v1/orgs/octocat/repos/", 404, "no_route"],
  ["/v1/orgs//repos", 404, "no_route"],
  ["/v1/repos/octocat", 404, "no_route"],
  ["/v1/repos/", 404, "no_route"],
  ["/v2/orgs/octocat/repos", 404, "no_route"],
  ["/v1/health/", 404, "no_route"],
  ["/v1/orgs/octocat/repos", 405, "method_not_allowed", { method: "POST", body: "{}" }],
  ["/v1/repos/octocat/x", 405, "method_not_allowed", { method: "DELETE" }],
  ["/v1/health", 405, "method_not_allowed", { method: "PUT", body: "x" }],
  ["/v1/orgs/octocat/repos", 401, "unauthorized", { headers: { Authorization: "Bearer not.a.jwt" } }],
  ["/v1/orgs/octocat/repos", 401, "unauthorized", { headers: { Authorization: "Basic Zm9vOmJhcg==" } }],
  ["/v1/repos?names=octocat/project-0000", 401, "unauthorized", { headers: { Authorization: "Bearer x" } }],
];

test("bad input gets a JSON error and never reaches GitHub", async () => {
  w.emu.reset();
  for (const [path, status, code, init] of BAD) {
    const res = await w.get(path, init);
    const label = `${init?.method ?? "GET"} ${path}`;
    assert.equal(res.status, status, label);
    assert.equal(res.body?.error?.code, code, label);
    assert.equal(typeof res.body.error.message, "string", label);
    assert.match(res.headers.get("content-type"), /^application\/json/, label);
    assert.equal(res.headers.get("cache-control"), "no-store", label);
  }
  assert.equal(w.emu.stats.requests, 0);
});

test("the invalid_fields message lists the allowed fields", async () => {
  const res = await w.get("/v1/orgs/octocat/repos?fields=bogus");
  for (const f of ["name", "owner", "full_name", "url", "description", "visibility", "private", "archived", "disabled", "fork", "default_branch", "pushed_at", "updated_at", "language", "ci"]) {
    assert.ok(res.body.error.message.includes(f), f);
  }
});

test("a wrong method names the allowed ones", async () => {
  const res = await w.get("/v1/orgs/octocat/repos", { method: "PATCH", body: "x" });
  assert.equal(res.headers.get("allow"), "GET, HEAD, OPTIONS");
});

test("CORS: allowed origins get headers and preflights, others get none", async () => {
  const ok = await w.get("/v1/orgs/octocat/repos", { headers: { Origin: "https://dash.example" } });
  assert.equal(ok.headers.get("access-control-allow-origin"), "https://dash.example");
  assert.equal(ok.headers.get("access-control-expose-headers"), "X-Cache, ETag, Retry-After, Link");
  assert.equal(ok.headers.get("access-control-allow-headers"), "Authorization, If-None-Match, Content-Type");
  const other = await w.get("/v1/orgs/octocat/repos", { headers: { Origin: "https://evil.example" } });
  assert.equal(other.status, 200);
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  const pre = await w.get("/v1/repos?names=a/b", {
    method: "OPTIONS",
    headers: { Origin: "https://dash.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization" },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "https://dash.example");
  assert.match(pre.headers.get("access-control-allow-methods"), /GET/);
  // Errors carry CORS headers too, so a dashboard can read them.
  const err = await w.get("/v1/orgs/-x/repos", { headers: { Origin: "https://dash.example" } });
  assert.equal(err.headers.get("access-control-allow-origin"), "https://dash.example");
});

for (const [label, fault, status, code] of [
  ["a 5xx", { status: 502, body: "<html>Bad gateway</html>" }, 502, "upstream_error"],
  ["a non-JSON body", { status: 200, body: "this is not json" }, 502, "upstream_error"],
  ["a reply without data", { status: 200, body: { errors: [{ message: "Something went wrong" }] } }, 502, "upstream_error"],
  ["401 without rate-limit signals", { status: 401, body: { message: "Bad credentials" } }, 502, "upstream_error"],
  ["a secondary rate limit", { status: 403, body: { message: "secondary rate limit" }, headers: { "retry-after": "37" } }, 429, "rate_limited"],
]) {
  test(`upstream ${label} answers ${status} ${code} and nothing is cached`, async () => {
    w.emu.reset();
    Object.assign(w.emu.faults, fault);
    const res = await w.get("/v1/orgs/small-org/repos?fields=name");
    assert.equal(res.status, status);
    assert.equal(res.body.error.code, code);
    assert.equal(res.headers.get("cache-control"), "no-store");
    if (status === 429) assert.equal(res.headers.get("retry-after"), "37");
    assert.ok(!res.text.includes("Bad gateway") && !res.text.includes("Bad credentials"), "upstream text is not relayed");
    const batch = await w.get("/v1/repos?names=small-org/tool-0004,small-org/tool-0005");
    assert.equal(batch.status, status);
    assert.equal(await w.kv.get("v1:org:small-org"), null, "errors are never stored");
    assert.equal(await w.kv.get("v1:repo:small-org/tool-0004"), null);
    if (status === 429) {
      // Remembered for every isolate (under the token's fingerprint), and honoured: the batch
      // above did not reach GitHub. Forget it to let the next call through.
      assert.ok(await w.kv.get(rateKey()));
      assert.equal(w.emu.stats.requests, 1);
      await w.kv.delete(rateKey());
    }
    w.emu.reset();
    // The owner's directory remembers a failed build for 10 s; a purge makes it ask at once.
    const purge = await w.get("/v1/cache/orgs/small-org", { method: "DELETE", headers: { Authorization: `Bearer ${ADMIN}` } });
    assert.equal(purge.status, 200);
    // The purge restarts the failed build at once; the caller gets it, built with one page.
    const healed = await w.get("/v1/orgs/small-org/repos?fields=name");
    assert.equal(healed.status, 200);
    assert.equal(w.emu.stats.requests, 1);
    const reset = await w.get("/v1/cache/orgs/small-org", { method: "DELETE", headers: { Authorization: `Bearer ${ADMIN}` } });
    assert.equal(reset.status, 200);
  });
}

test("a slow upstream is cut off at the deadline: 503 for names, 202 for a listing", async () => {
  const slow = await startWorker({ UPSTREAM_TIMEOUT_MS: "300" }, { latencyMs: 2000 });
  try {
    let started = Date.now();
    const res = await slow.get("/v1/repos/octocat/project-0000");
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, "upstream_unavailable");
    assert.ok(Date.now() - started < 1500, "answered near the 300 ms budget");
    // A listing is built by the owner's directory, which goes on after the caller leaves.
    started = Date.now();
    const listing = await slow.get("/v1/orgs/octocat/repos");
    assert.equal(listing.status, 202);
    assert.equal(listing.body.status, "building");
    assert.ok(Date.now() - started < 1500, "answered near the 300 ms budget");
  } finally {
    await slow.close();
  }
});

test("an unreachable upstream answers 503", async () => {
  const down = await startWorker({ GITHUB_GRAPHQL_URL: "http://127.0.0.1:9/graphql" });
  try {
    const res = await down.get("/v1/repos/octocat/project-0000");
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, "upstream_unavailable");
  } finally {
    await down.close();
  }
});

test("invalid configuration answers 500 naming the variable; health still answers", async () => {
  for (const [vars, name] of [
    [{ FRESH_TTL_SECONDS: "soon" }, "FRESH_TTL_SECONDS"],
    [{ STALE_TTL_SECONDS: "30" }, "STALE_TTL_SECONDS"],
    [{ PINNED_ORGS: "octo-org,not valid" }, "PINNED_ORGS"],
    [{ READ_TOKEN_SECRET: "too-short" }, "READ_TOKEN_SECRET"],
  ]) {
    const bad = await startWorker({ ...vars, GITHUB_TOKEN: "ghp_secretvalue" });
    try {
      const res = await bad.get("/v1/orgs/octocat/repos");
      assert.equal(res.status, 500);
      assert.equal(res.body.error.code, "config_invalid");
      assert.ok(res.body.error.message.includes(name), res.body.error.message);
      assert.equal(bad.emu.stats.requests, 0);
      const health = await bad.get("/v1/health");
      assert.equal(health.status, 200);
      assert.equal(health.body.status, "ok");
      assert.equal(health.body.config_error, name);
      assert.equal(health.body.config.GITHUB_TOKEN, true);
      assert.ok(!health.text.includes("ghp_secretvalue") && !health.text.includes(Object.values(vars)[0]));
    } finally {
      await bad.close();
    }
  }
});

test("health lists every variable as a boolean", async () => {
  const res = await w.get("/v1/health");
  assert.equal(res.status, 200);
  assert.equal(res.body.config_error, null);
  assert.match(res.body.version, /^\d+\.\d+\.\d+$/);
  const expected = ["CACHE", "OWNERS", "UPSTREAM_LIMITER", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_API_URL", "GITHUB_GRAPHQL_URL", "GITHUB_TOKEN", "GITHUB_WEBHOOK_SECRET", "ADMIN_TOKEN", "READ_TOKEN_SECRET", "FRESH_TTL_SECONDS", "STALE_TTL_SECONDS", "UPSTREAM_TIMEOUT_MS", "MEMORY_TTL_MS", "PINNED_ORGS", "ALLOWED_OWNERS", "GITHUB_BUDGET_RESERVE", "ALLOWED_ORIGINS", "BUILD_CONCURRENCY", "PRIVATE_REPOS_ANONYMOUS", "DELIVERY_RECOVERY", "ANALYTICS"];
  assert.deepEqual(Object.keys(res.body.config).sort(), [...expected].sort());
  assert.ok(Object.values(res.body.config).every((v) => typeof v === "boolean"));
  assert.equal(res.body.config.CACHE, true);
  assert.equal(res.body.config.ALLOWED_ORIGINS, true);
  assert.equal(res.body.config.ADMIN_TOKEN, true);
  assert.equal(res.body.config.OWNERS, true);
  assert.equal(res.body.config.UPSTREAM_LIMITER, false);
  assert.equal(res.body.config.ANALYTICS, false, "no Analytics Engine dataset bound here");
});
