// Live listings in the built worker: repository-level deliveries revalidate one record in the
// owner's Durable Object instead of throwing its listing away, so a busy owner's polls stay
// complete (200, never 202) and cost no listing pages; narrowing facts apply before the delivery
// is answered; builds in progress are not restarted; replays change nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startWorker, fixtureRepos } from "./harness.mjs";
import { sendDeliveries } from "../emulator/deliveries.mjs";

const SECRET = "e2e-live-secret";
let w;
before(async () => {
  // Pages cost 100 ms per 100 repositories: a build of big-org (1,000) takes about a second.
  w = await startWorker({ GITHUB_WEBHOOK_SECRET: SECRET, ADMIN_TOKEN: "e2e-live-admin" }, { pageMs: 100 }, { port: 0, host: "127.0.0.1" });
});
after(async () => {
  await w.close();
});

function deliver(event, payload, id = crypto.randomUUID()) {
  const body = JSON.stringify(payload);
  const signature = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
  const headers = { "X-GitHub-Event": event, "Content-Type": "application/json", "X-GitHub-Delivery": id, "X-Hub-Signature-256": signature };
  return w.get("/v1/webhooks/github", { method: "POST", headers, body });
}

const push = (full) => ({ ref: "refs/heads/main", repository: { full_name: full, default_branch: "main" } });
const repoEvent = (action, full, extra = {}) => ({ action, repository: { full_name: full, default_branch: "main" }, ...extra });
const record = (owner, name) => w.emu.forge.owners.get(owner.toLowerCase()).repos.find((r) => r.name === name);
const publicCount = (owner) => fixtureRepos(w.emu, owner).filter((r) => r.visibility === "PUBLIC").length;
const listed = async (owner) => {
  const res = await w.get(`/v1/orgs/${owner}/repos?fields=name,visibility`);
  return { res, names: res.body?.repos?.map((r) => r.name) ?? null };
};

test("a long stream of deliveries: every poll is complete, and no listing page is asked", async () => {
  assert.equal((await w.get("/v1/orgs/octo-org/repos")).status, 200);
  w.emu.reset();
  const repos = fixtureRepos(w.emu, "octo-org");
  const want = publicCount("octo-org");
  let polls = 0;
  for (let i = 0; i < 30; i++) {
    const delivery = deliver("push", push(`octo-org/${repos[(i * 7) % repos.length].name}`));
    const during = [listed("octo-org"), listed("octo-org")];
    const [res, ...seen] = await Promise.all([delivery, ...during]);
    assert.equal(res.status, 200, `delivery ${i}`);
    for (const { res: poll, names } of [...seen, await listed("octo-org")]) {
      polls++;
      assert.equal(poll.status, 200, `poll during delivery ${i}`);
      assert.equal(names.length, want, `poll during delivery ${i} is complete`);
    }
  }
  assert.equal(polls, 90);
  assert.equal(w.emu.stats.ownerPages, 0, "no listing page during the activity");
  assert.ok(w.emu.stats.batch <= 30, `at most one revalidation per delivery: ${w.emu.stats.batch}`);
  // Those pushes changed nothing GitHub reports, so nothing anonymous callers see moved; a push
  // that moves a public repository's pushed_at does.
  const shown = repos.find((r) => r.visibility === "PUBLIC");
  record("octo-org", shown.name).pushedAt = "2026-11-30T12:00:00Z";
  // (Its own body: the same bytes as a push above would be a replay, and change nothing.)
  const visible = { ...push(`octo-org/${shown.name}`), after: "4b8c1e0" };
  assert.equal((await deliver("push", visible)).status, 200);
  const body = (await w.get("/v1/orgs/octo-org/repos")).body;
  assert.match(body.revalidated_at, /^\d{4}-\d\d-\d\dT/);
  assert.ok(Date.parse(body.fetched_at) < Date.parse(body.revalidated_at), "fetched_at stays the build's start");
});

test("a privatize leaves the anonymous listing before its delivery is answered", async () => {
  const name = fixtureRepos(w.emu, "octo-org").find((r) => r.visibility === "PUBLIC").name;
  assert.ok((await listed("octo-org")).names.includes(name));
  // GitHub is down: the signed payload's narrowing fact is applied without it.
  w.emu.faults.status = 502;
  const rec = record("octo-org", name);
  rec.visibility = "PRIVATE";
  rec.isPrivate = true;
  const res = await deliver("repository", repoEvent("privatized", `octo-org/${name}`));
  assert.equal(res.status, 200, "queued durably for the retry");
  const { res: poll, names } = await listed("octo-org");
  assert.equal(poll.status, 200);
  assert.ok(!names.includes(name), "gone from the anonymous listing");
  w.emu.faults.status = null;
  // The object's alarm asks GitHub again (RETRY_MS) and writes the patched listing.
  const end = Date.now() + 15_000;
  for (;;) {
    const stored = JSON.parse((await w.kv.get("v1:org:octo-org")) ?? "null");
    const r = stored?.data?.repos.find((x) => x.name === name);
    if (r?.visibility === "private") break;
    assert.ok(Date.now() < end, "the queued change was revalidated");
    await new Promise((r) => setTimeout(r, 200));
  }
});

test("widening facts come from GitHub only: a publicized delivery GitHub disagrees with shows nothing", async () => {
  const hidden = fixtureRepos(w.emu, "octo-org").find((r) => r.visibility === "PRIVATE").name;
  const res = await deliver("repository", repoEvent("publicized", `octo-org/${hidden}`));
  assert.equal(res.status, 200);
  assert.ok(!(await listed("octo-org")).names.includes(hidden));
  const rec = record("octo-org", hidden);
  rec.visibility = "PUBLIC";
  rec.isPrivate = false;
  await new Promise((r) => setTimeout(r, 1_100));
  // Another delivery, so another body (the same bytes again would be a replay of the first).
  const again = repoEvent("publicized", `octo-org/${hidden}`);
  again.repository.updated_at = new Date().toISOString();
  assert.equal((await deliver("repository", again)).status, 200);
  assert.ok((await listed("octo-org")).names.includes(hidden), "public once GitHub says so");
});

test("a delivery during a build neither restarts it nor is lost", async () => {
  w.emu.reset();
  const building = w.get("/v1/orgs/big-org/repos?fields=name");
  // The first page (repo-0000…repo-0099) has arrived; repo-0001 turns private now.
  await new Promise((r) => setTimeout(r, 400));
  const rec = record("big-org", "repo-0001");
  rec.visibility = "PRIVATE";
  rec.isPrivate = true;
  const res = await deliver("repository", repoEvent("privatized", "big-org/repo-0001"));
  assert.equal(res.status, 200);
  const done = await building;
  assert.equal(done.status, 200);
  assert.ok(!done.body.repos.some((r) => r.name === "repo-0001"), "the completed listing holds the change");
  // Each page of the build (its parts', side by side) asked once: not restarted.
  const pages = w.emu.stats.log.filter((e) => e.kind === "owner").map((e) => `${JSON.stringify(e.part)} ${e.back} ${e.offset}`);
  assert.equal(new Set(pages).size, pages.length, "the build was not restarted");
  assert.equal(w.emu.stats.ownerPages, pages.length);
  const stored = JSON.parse(await w.stored("v1:org:big-org"));
  assert.equal(stored.data.repos.find((r) => r.name === "repo-0001").visibility, "private");
});

test("a replayed delivery changes nothing and costs nothing", async () => {
  const id = crypto.randomUUID();
  const first = await deliver("push", push("octo-org/repo-0002"), id);
  assert.equal(first.status, 200);
  w.emu.reset();
  const before = await w.kv.get("v1:org:octo-org");
  const replay = await deliver("push", push("octo-org/repo-0002"), id);
  assert.equal(replay.status, 200);
  assert.deepEqual(replay.body, first.body);
  assert.equal(w.emu.stats.requests, 0, "no upstream request");
  assert.equal(await w.kv.get("v1:org:octo-org"), before, "no KV write");
});

test("a burst of 150 deliveries is coalesced into a few queries", async () => {
  assert.equal((await w.get("/v1/orgs/octo-org/repos")).status, 200);
  await new Promise((r) => setTimeout(r, 1_100));
  w.emu.reset();
  const repos = fixtureRepos(w.emu, "octo-org").slice(0, 150);
  const answers = await Promise.all(repos.map((r) => deliver("push", push(`octo-org/${r.name}`))));
  assert.ok(answers.every((a) => a.status === 200));
  assert.equal(w.emu.stats.ownerPages, 0);
  assert.ok(w.emu.stats.batch <= 6, `150 deliveries, ${w.emu.stats.batch} queries`);
  for (const entry of w.emu.stats.log) {
    assert.ok(Object.keys(entry.variables).length <= 200, "at most 100 repositories per query");
  }
  const { res } = await listed("octo-org");
  assert.equal(res.status, 200);
});

test("a transfer between two listed owners moves the record, and a rename renames it", async () => {
  assert.equal((await listed("Small-Org")).res.status, 200);
  assert.equal((await listed("octocat")).res.status, 200);
  w.emu.reset();
  // On GitHub: Small-Org/tool-0002 becomes octocat/tool-0002 (the old name redirects).
  const small = w.emu.forge.owners.get("small-org");
  const rec = small.repos.find((r) => r.name === "tool-0002");
  small.repos.splice(small.repos.indexOf(rec), 1);
  const moved = { ...rec, owner: { __typename: "User", login: "octocat" }, nameWithOwner: "octocat/tool-0002", url: "https://github.com/octocat/tool-0002" };
  w.emu.forge.owners.get("octocat").repos.push(moved);
  w.emu.forge.renames.set("small-org/tool-0002", "octocat/tool-0002");
  const res = await deliver(
    "repository",
    repoEvent("transferred", "octocat/tool-0002", { changes: { owner: { from: { organization: { login: "Small-Org" } } } } }),
  );
  assert.equal(res.status, 200);
  assert.ok(!(await listed("Small-Org")).names.includes("tool-0002"));
  assert.ok((await listed("octocat")).names.includes("tool-0002"));
  // Renamed on GitHub: project-0000 is now project-renamed.
  const cat = record("octocat", "project-0000");
  cat.name = "project-renamed";
  cat.nameWithOwner = "octocat/project-renamed";
  w.emu.forge.renames.set("octocat/project-0000", "octocat/project-renamed");
  const renamed = await deliver(
    "repository",
    repoEvent("renamed", "octocat/project-renamed", { changes: { repository: { name: { from: "project-0000" } } } }),
  );
  assert.equal(renamed.status, 200);
  const names = (await listed("octocat")).names;
  assert.ok(names.includes("project-renamed") && !names.includes("project-0000"), names.join());
  assert.equal(w.emu.stats.ownerPages, 0, "no rebuild for either owner");
});

test("a KV miss for an owner whose object holds a listing is answered from it, never 202", async () => {
  assert.equal((await w.get("/v1/orgs/octo-org/repos")).status, 200);
  await w.kv.delete("v1:org:octo-org");
  w.emu.reset();
  const res = await w.get("/v1/orgs/octo-org/repos?fields=name");
  assert.equal(res.status, 200);
  assert.equal(res.body.repos.length, publicCount("octo-org"));
  assert.equal(w.emu.stats.requests, 0);
});

test("the dev delivery sender (LIVE=1 npm run dev) keeps a listing live: CI states follow, no page is asked", async () => {
  assert.equal((await w.get("/v1/orgs/octo-org/repos")).status, 200);
  w.emu.reset();
  const sent = [];
  const stop = sendDeliveries({ forge: w.emu.forge, url: new URL("/v1/webhooks/github", w.url).href, secret: SECRET, everyMs: 250, log: (m) => sent.push(m) });
  await new Promise((r) => setTimeout(r, 2600));
  stop();
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(sent.length >= 5, sent.join("\n"));
  assert.ok(sent.every((m) => m.endsWith("→ 200")), sent.join("\n"));
  const body = (await w.get("/v1/orgs/octo-org/repos?fields=name,ci&visibility=public,private,internal")).body;
  const byName = new Map(body.repos.map((r) => [r.name, r.ci?.state ?? null]));
  for (const line of sent) {
    const [, name] = /octo-org\/(\S+) CI/.exec(line);
    const truth = w.emu.forge.owners.get("octo-org").repos.find((r) => r.name === name);
    if (truth.visibility !== "PUBLIC") continue;
    assert.equal(byName.get(name), truth.defaultBranchRef.target.statusCheckRollup.state.toLowerCase(), name);
  }
  assert.equal(w.emu.stats.ownerPages, 0, "no listing page");
  assert.ok(w.emu.stats.batch <= sent.length, "at most one revalidation per delivery");
});
