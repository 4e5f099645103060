// The third review's findings in the built worker: activity on records a caller may not see
// changes nothing in that caller's listing or summary (body, revalidated_at, ETag), and an
// owner-level purge reaches the listing an owner's Durable Object stored even after the object
// lost its memory (workerd evicts an idle object after about ten seconds).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startWorker, fixtureRepos, mintReadToken } from "./harness.mjs";

const SECRET = "e2e-review3-secret";
const READ_SECRET = "e2e-review3-read-token-secret-0123456789";
const ADMIN = "e2e-review3-admin";
let hide;
let redact;
before(async () => {
  const vars = { GITHUB_WEBHOOK_SECRET: SECRET, ADMIN_TOKEN: ADMIN, READ_TOKEN_SECRET: READ_SECRET, MEMORY_TTL_MS: "0" };
  hide = await startWorker(vars);
  redact = await startWorker({ ...vars, PRIVATE_REPOS_ANONYMOUS: "redact" });
});
after(async () => {
  await hide.close();
  await redact.close();
});

const readToken = (orgs) => mintReadToken(READ_SECRET, orgs);

function deliver(w, event, payload) {
  const body = JSON.stringify(payload);
  const signature = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
  const headers = { "X-GitHub-Event": event, "Content-Type": "application/json", "X-GitHub-Delivery": crypto.randomUUID(), "X-Hub-Signature-256": signature };
  return w.get("/v1/webhooks/github", { method: "POST", headers, body });
}
const push = (full) => ({ ref: "refs/heads/main", repository: { full_name: full, default_branch: "main" } });
const record = (w, owner, name) => w.emu.forge.owners.get(owner).repos.find((r) => r.name === name);

for (const mode of ["hide", "redact"]) {
  test(`${mode}: a push to a private repository changes no anonymous body, ETag or summary`, async () => {
    const w = mode === "hide" ? hide : redact;
    const repos = fixtureRepos(w.emu, "octo-org");
    const hidden = repos.find((r) => r.visibility !== "PUBLIC" && r.defaultBranchRef);
    const shown = repos.find((r) => r.visibility === "PUBLIC" && r.defaultBranchRef);
    assert.ok(hidden && shown, "the demo forge has both");
    const listing = await w.get("/v1/orgs/octo-org/repos");
    const summary = await w.get("/v1/orgs/octo-org/summary");
    assert.equal(listing.status, 200);
    const etag = listing.headers.get("etag");
    // GitHub records a push to the private repository; its delivery is applied.
    record(w, "octo-org", hidden.name).pushedAt = "2026-11-30T09:00:00Z";
    w.emu.reset();
    assert.equal((await deliver(w, "push", push(`octo-org/${hidden.name}`))).status, 200);
    assert.equal((await deliver(w, "push", push("octo-org/no-such-repository"))).status, 200);
    assert.ok(w.emu.stats.batch >= 1, "GitHub was asked about it");
    const again = await w.get("/v1/orgs/octo-org/repos");
    assert.equal(again.text, listing.text, "the anonymous listing is unchanged");
    assert.equal(again.headers.get("etag"), etag);
    const revalidated = await w.get("/v1/orgs/octo-org/repos", { headers: { "If-None-Match": etag } });
    assert.equal(revalidated.status, 304);
    assert.equal((await w.get("/v1/orgs/octo-org/summary")).text, summary.text, "the summary too");
    // The owner's token sees the push, and when it was revalidated.
    const auth = { Authorization: `Bearer ${readToken(["octo-org"])}` };
    const mine = await w.get("/v1/orgs/octo-org/repos?fields=name,pushed_at", { headers: auth });
    assert.match(mine.body.revalidated_at, /^\d{4}-/);
    assert.equal(mine.body.repos.find((r) => r.name === hidden.name).pushed_at, "2026-11-30T09:00:00Z");
    // A push to a public repository is everyone's to see.
    record(w, "octo-org", shown.name).pushedAt = "2026-11-30T10:00:00Z";
    assert.equal((await deliver(w, "push", push(`octo-org/${shown.name}`))).status, 200);
    const after = await w.get("/v1/orgs/octo-org/repos");
    assert.match(after.body.revalidated_at, /^\d{4}-/);
    assert.notEqual(after.headers.get("etag"), etag);
  });
}

test("an admin purge after the owner's object was evicted rebuilds the listing", async () => {
  const w = hide;
  assert.equal((await w.get("/v1/orgs/small-org/repos")).status, 200);
  // Idle long enough for workerd to evict the object (memory lost, storage kept).
  await new Promise((r) => setTimeout(r, 15_000));
  const before = await w.get("/v1/orgs/small-org/repos");
  w.emu.reset();
  const purge = await w.get("/v1/cache/orgs/small-org", { method: "DELETE", headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(purge.status, 200);
  assert.deepEqual(purge.body, { invalidated: ["v1:org:small-org"] });
  const read = await w.get("/v1/orgs/small-org/repos");
  assert.equal(read.status, 200);
  assert.equal(read.headers.get("x-cache"), "MISS", "not answered from the stored listing");
  assert.ok(w.emu.stats.ownerPages >= 1, "the listing was asked of GitHub again");
  assert.ok(Date.parse(read.body.fetched_at) > Date.parse(before.body.fetched_at));
});
