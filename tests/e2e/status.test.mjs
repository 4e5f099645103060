// GET /v1/orgs/{owner}/status in the built worker: the admin token first (503 unset, 401), a bad
// name 400, nothing secret in the answer, asking never starts a build, and the drift a rebuild
// finds (a repository GitHub made private with no delivery) against a control rebuild that
// finds none.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startWorker, TOKEN } from "./harness.mjs";
import { makeRepo } from "../emulator/fixtures.mjs";

const ADMIN = "e2e-status-admin-token";
let w;
let bare;
before(async () => {
  w = await startWorker({ ADMIN_TOKEN: ADMIN, MEMORY_TTL_MS: "0", FRESH_TTL_SECONDS: "2" });
  bare = await startWorker({});
});
after(async () => {
  await w.close();
  await bare.close();
});

const admin = { headers: { Authorization: `Bearer ${ADMIN}` } };
const status = (owner, opts = admin) => w.get(`/v1/orgs/${owner}/status`, opts);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("refusals, and asking starts nothing", async () => {
  const unset = await bare.get("/v1/orgs/small-org/status", admin);
  assert.equal(unset.status, 503);
  assert.equal(unset.body.error.code, "not_configured");
  assert.equal((await status("small-org", {})).status, 401);
  assert.equal((await status("small-org", { headers: { Authorization: "Bearer nope" } })).status, 401);
  const bad = await status("-bad-");
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "invalid_name");
  w.emu.reset();
  const none = await status("octocat");
  assert.equal(none.status, 200);
  assert.equal(none.headers.get("cache-control"), "no-store");
  assert.equal(none.body.listing, "none");
  assert.equal(none.body.build, null);
  assert.equal(w.emu.stats.requests, 0, "GitHub was not asked");
  assert.ok(!none.text.includes(ADMIN) && !none.text.includes(TOKEN), "no secret in the answer");
});

test("a rebuild's drift, and a control rebuild's none", async () => {
  const first = await w.get("/v1/orgs/small-org/repos");
  assert.equal(first.status, 200);
  let s = (await status("small-org")).body;
  assert.equal(s.listing, "ready");
  assert.equal(s.owner, "small-org");
  assert.ok(s.records >= first.body.repos.length, "private records counted too");
  assert.equal(s.drift.last_rebuild_at, null);
  for (const key of ["fetched_at", "revalidated_at", "pending_changes", "oldest_pending_at", "failed_rounds", "next_retry_at", "subscribers", "deliveries_24h"]) {
    assert.ok(key in s, key);
  }
  // GitHub makes a public repository private; no delivery says so.
  const shown = w.emu.forge.owners.get("small-org").repos.find((r) => r.visibility === "PUBLIC");
  shown.visibility = "PRIVATE";
  shown.isPrivate = true;
  const rebuilt = async (after) => {
    await sleep(2_500);
    assert.equal((await w.get("/v1/orgs/small-org/repos")).status, 200, "stale, refreshed in the background");
    for (let i = 0; i < 50; i++) {
      const now = (await status("small-org")).body;
      if (now.drift.last_rebuild_at && now.drift.last_rebuild_at !== after) return now;
      await sleep(200);
    }
    assert.fail("no rebuild completed");
  };
  s = await rebuilt(null);
  assert.deepEqual(s.drift.last, { narrowed: 1, widened: 0, state: 0, added: 0 });
  assert.deepEqual(s.drift.last_24h, s.drift.last);
  // The object counts drift as the rebuild completes; the listing's KV write follows its answer,
  // and a read meanwhile may still get the stale copy (with a background refresh).
  let shows = true;
  for (let i = 0; i < 30 && shows; i++) {
    const anonymous = await w.get("/v1/orgs/small-org/repos");
    shows = anonymous.body.repos.some((r) => r.name === shown.name);
    if (shows) await sleep(200);
  }
  assert.ok(!shows, "and the listing no longer shows it");
  s = await rebuilt(s.drift.last_rebuild_at);
  assert.deepEqual(s.drift.last, { narrowed: 0, widened: 0, state: 0, added: 0 });
  assert.deepEqual(s.drift.last_24h, { narrowed: 1, widened: 0, state: 0, added: 0 });
  // Then, again with no delivery: a private repository made public, a public one archived, and a
  // new one created. The next rebuild counts one of each kind.
  const repos = w.emu.forge.owners.get("small-org").repos;
  const hidden = repos.find((r) => r.visibility === "PRIVATE" && r !== shown);
  hidden.visibility = "PUBLIC";
  hidden.isPrivate = false;
  const archived = repos.find((r) => r.visibility === "PUBLIC" && !r.isArchived && r !== hidden);
  archived.isArchived = true;
  repos.push(makeRepo("Small-Org", "Organization", "drift-new", 4));
  s = await rebuilt(s.drift.last_rebuild_at);
  assert.deepEqual(s.drift.last, { narrowed: 0, widened: 1, state: 1, added: 1 });
  assert.deepEqual(s.drift.last_24h, { narrowed: 1, widened: 1, state: 1, added: 1 });
});

test("deliveries applied and replayed are counted, with an Analytics Engine dataset bound", async () => {
  const SECRET = "e2e-status-hook-secret";
  const a = await startWorker(
    { ADMIN_TOKEN: ADMIN, GITHUB_WEBHOOK_SECRET: SECRET, MEMORY_TTL_MS: "0" },
    {},
    { analyticsEngineDatasets: { ANALYTICS: { dataset: "forgelens" } } },
  );
  try {
    const health = await a.get("/v1/health");
    assert.equal(health.body.config.ANALYTICS, true, "the binding is reported");
    assert.equal((await a.get("/v1/orgs/small-org/repos")).status, 200, "data points written, answers unchanged");
    const name = a.emu.forge.owners.get("small-org").repos[0].name;
    const body = JSON.stringify({ ref: "refs/heads/main", repository: { full_name: `small-org/${name}`, default_branch: "main" } });
    const signature = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
    const deliver = (id) => a.get("/v1/webhooks/github", {
      method: "POST",
      headers: { "X-GitHub-Event": "push", "Content-Type": "application/json", "X-GitHub-Delivery": id, "X-Hub-Signature-256": signature },
      body,
    });
    assert.equal((await deliver("d-1")).status, 200);
    assert.equal((await deliver("d-2")).status, 200, "the same signed body again: a replay");
    // Counted after the answers, by the owner's object.
    let counted;
    for (let i = 0; i < 40; i++) {
      counted = (await a.get("/v1/orgs/small-org/status", admin)).body.deliveries_24h;
      if (counted.applied + counted.replayed === 2) break;
      await sleep(100);
    }
    assert.deepEqual(counted, { applied: 1, replayed: 1 });
  } finally {
    await a.close();
  }
});
