// The third review's finding 3 in the built worker: an applied delivery is remembered by the
// SHA-256 of its signed body, not by the unsigned X-GitHub-Delivery. A captured body replayed
// under a fresh id is answered as the first time and changes nothing (no GitHub request, no KV
// write), owner-level events included; a ping sent under an id does not swallow the genuine
// delivery GitHub later sends with that id.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { startWorker, fixtureRepos } from "./harness.mjs";

const SECRET = "e2e-replay-secret";
let w;
before(async () => {
  w = await startWorker({ GITHUB_WEBHOOK_SECRET: SECRET });
});
after(async () => {
  await w.close();
});

/** Sends `body` (a string, byte for byte), signed, under `id` (none when null). */
function send(event, body, id = crypto.randomUUID()) {
  const signature = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
  const headers = { "X-GitHub-Event": event, "Content-Type": "application/json", "X-Hub-Signature-256": signature };
  if (id !== null) headers["X-GitHub-Delivery"] = id;
  return w.get("/v1/webhooks/github", { method: "POST", headers, body });
}

const memoryKey = (body) => `v1:delivery:${createHash("sha256").update(body).digest("hex")}`;
const push = (full) => JSON.stringify({ ref: "refs/heads/main", repository: { full_name: full, default_branch: "main" } });
const listed = async (owner) => (await w.get(`/v1/orgs/${owner}/repos?fields=name`)).body.repos.map((r) => r.name);

/** Every KV key with its expiration, and every value: what a replay must leave as it was. */
async function snapshot() {
  const { keys } = await w.kv.list();
  const values = await Promise.all(keys.map((k) => w.kv.get(k.name)));
  return keys.map((k, i) => [k.name, k.expiration ?? null, values[i]]);
}

/** The snapshot once KV has stopped changing (a directory writes its listing after answering). */
async function settled() {
  let last = await snapshot();
  const end = Date.now() + 5_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const now = await snapshot();
    if (JSON.stringify(now) === JSON.stringify(last) || Date.now() > end) return now;
    last = now;
  }
}

test("a signed body replayed under fresh ids answers the same and costs nothing; it is remembered by its SHA-256 for an hour", async () => {
  assert.equal((await w.get("/v1/orgs/octo-org/repos")).status, 200);
  await w.stored("v1:org:octo-org");
  const name = fixtureRepos(w.emu, "octo-org").find((r) => r.visibility === "PUBLIC").name;
  const body = push(`octo-org/${name}`);
  const id = crypto.randomUUID();
  w.emu.reset();
  const first = await send("push", body, id);
  assert.equal(first.status, 200);
  assert.deepEqual(first.body.invalidated, [`v1:repo:octo-org/${name.toLowerCase()}`, "v1:org:octo-org"]);
  assert.ok(w.emu.stats.requests >= 1, "the delivery asked GitHub");
  // Remembered by the body's SHA-256, at least an hour; nothing is keyed on the id.
  const { keys } = await w.kv.list({ prefix: "v1:delivery:" });
  const kept = keys.find((k) => k.name === memoryKey(body));
  assert.ok(kept, JSON.stringify(keys));
  assert.ok(kept.expiration >= Date.now() / 1000 + 3600 - 60, `kept until ${kept.expiration}`);
  assert.ok(!keys.some((k) => k.name.includes(id)), "not keyed on X-GitHub-Delivery");

  const before = await settled();
  w.emu.reset();
  for (const replayId of [crypto.randomUUID(), crypto.randomUUID(), null, id]) {
    const replay = await send("push", body, replayId);
    assert.equal(replay.status, 200, String(replayId));
    assert.equal(replay.text, first.text, `${replayId}: the same answer`);
  }
  assert.equal(w.emu.stats.requests, 0, "no upstream request");
  assert.deepEqual(await snapshot(), before, "no KV write");
});

test("a ping sent under an id does not swallow the genuine delivery with that id", async () => {
  const name = fixtureRepos(w.emu, "octo-org").filter((r) => r.visibility === "PUBLIC")[1].name;
  assert.ok((await listed("octo-org")).includes(name));
  const id = crypto.randomUUID();
  const ping = await send("ping", JSON.stringify({ zen: "Half measures are as bad as nothing at all.", hook_id: 7 }), id);
  assert.deepEqual([ping.status, ping.body], [200, { action: null, event: "ping", invalidated: [] }]);
  // GitHub makes the repository private and sends its delivery under that id.
  const rec = w.emu.forge.owners.get("octo-org").repos.find((r) => r.name === name);
  rec.visibility = "PRIVATE";
  rec.isPrivate = true;
  w.emu.reset();
  const body = JSON.stringify({ action: "privatized", repository: { full_name: `octo-org/${name}`, default_branch: "main" } });
  const genuine = await send("repository", body, id);
  assert.equal(genuine.status, 200);
  assert.deepEqual(genuine.body, {
    action: "privatized",
    event: "repository",
    invalidated: [`v1:repo:octo-org/${name.toLowerCase()}`, "v1:org:octo-org"],
  });
  assert.equal(w.emu.stats.batch, 1, "GitHub was asked about the repository");
  assert.ok(!(await listed("octo-org")).includes(name), "gone from the listing");
});

test("an owner-level delivery replayed under a new id does not throw the rebuilt listing away", async () => {
  const body = JSON.stringify({
    action: "added",
    installation: { id: 7, account: { login: "Small-Org", type: "Organization" } },
    repository_selection: "selected",
    repositories_added: [{ id: 3, name: "tool-0003", full_name: "Small-Org/tool-0003", private: false }],
    repositories_removed: [],
  });
  assert.equal((await w.get("/v1/orgs/small-org/repos")).status, 200);
  assert.ok(await w.stored("v1:org:small-org"));
  const first = await send("installation_repositories", body);
  assert.equal(first.status, 200);
  assert.ok(first.body.invalidated.includes("v1:org:small-org"), first.text);
  assert.equal(await w.kv.get("v1:org:small-org"), null, "the listing was thrown away");
  w.emu.reset();
  assert.equal((await w.get("/v1/orgs/small-org/repos")).status, 200);
  assert.ok(w.emu.stats.ownerPages >= 1, "rebuilt once");
  assert.ok(await w.stored("v1:org:small-org"));
  const before = await settled();
  const rebuilt = await w.kv.get("v1:org:small-org");
  w.emu.reset();
  const replay = await send("installation_repositories", body);
  assert.equal(replay.status, 200);
  assert.equal(replay.text, first.text);
  assert.equal(await w.kv.get("v1:org:small-org"), rebuilt, "the listing stayed");
  assert.deepEqual(await snapshot(), before, "no KV write");
  assert.equal((await w.get("/v1/orgs/small-org/repos")).status, 200);
  assert.equal(w.emu.stats.requests, 0, "no rebuild, no GitHub request");
});
