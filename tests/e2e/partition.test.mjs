// Partitioned builds, end to end (DESIGN.md, "Partitioned builds"): the OwnerDirectory asks every
// part's count beside the first page, then pages the parts side by side, large ones from both ends,
// with at most BUILD_CONCURRENCY owner queries in flight. Every repository is listed exactly once;
// a failing stream shrinks alone; a spent rate limit pauses every stream; a repository that moves
// between parts mid-build is listed once, in its new state; a one-page owner costs one request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, fixtureRepos, names, mintReadToken } from "./harness.mjs";

const SECRET = "partitioned-builds-read-token-secret-0123456789";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Owner pages the emulator was asked for `owner`, in order. */
const ownerPages = (emu, owner) => emu.stats.log.filter((e) => !e.rest && e.owner?.toLowerCase() === owner);
/** Which page a log entry asked: its part (or the whole listing), its end and its place there. */
const pageId = (e) => `${JSON.stringify(e.part)} ${e.back} ${e.offset}`;

/** Polls the listing until it is no longer 202, as the dashboard does. */
async function untilBuilt(w, path, init = {}, limitMs = 120_000) {
  const end = Date.now() + limitMs;
  for (;;) {
    const r = await w.get(path, init);
    if (r.status !== 202 || Date.now() > end) return r;
    await sleep(100);
  }
}

/** The owner's repositories per part (`visibility isArchived isFork` → count). */
function partCounts(emu, owner) {
  const parts = new Map();
  for (const r of emu.forge.owners.get(owner).repos) {
    const k = `${r.visibility} ${r.isArchived} ${r.isFork}`;
    parts.set(k, (parts.get(k) ?? 0) + 1);
  }
  return parts;
}

test("huge-org is listed side by side: four queries in flight, every repository once, in well under the sequential floor", async () => {
  const pageMs = 100;
  const w = await startWorker({ READ_TOKEN_SECRET: SECRET, UPSTREAM_TIMEOUT_MS: "1000" }, { pageMs });
  try {
    const t0 = Date.now();
    const first = await w.get("/v1/orgs/huge-org/repos?fields=name");
    assert.equal(first.status, 202);
    assert.equal(first.body.repos_total, 10_000, "the parts' counts sum to the listing");
    const done = await untilBuilt(w, "/v1/orgs/huge-org/repos?fields=name,visibility");
    const took = Date.now() - t0;
    assert.equal(done.status, 200);
    const pages = ownerPages(w.emu, "huge-org");
    // The sequential floor: 100 pages one after another.
    const floor = 100 * pageMs;
    assert.ok(took < 0.6 * floor, `listed in ${took} ms against a floor of ${floor} ms`);
    assert.equal(w.emu.stats.peakOwnerInFlight, 4, "BUILD_CONCURRENCY's default: 4 in flight");
    assert.ok(pages[0].query.includes("p11: repositories(first: 1"), "the first request asks every part's count");
    assert.equal(new Set(pages.map(pageId)).size, pages.length, "no page asked twice");
    const parts = [...partCounts(w.emu, "huge-org").values()];
    const least = 1 + parts.reduce((n, c) => n + Math.ceil(c / 100), 0);
    assert.ok(pages.length >= least && pages.length <= least + parts.length, `${pages.length} pages for ${least} at least`);
    assert.ok(pages.some((e) => e.back), "large parts are read from the back too");

    // Exactly the emulator's truth, anonymous (public only) and with a read token (everything).
    const truth = fixtureRepos(w.emu, "huge-org");
    assert.deepEqual(names(done.body.repos), names(truth.filter((r) => r.visibility === "PUBLIC")));
    const token = mintReadToken(SECRET, ["huge-org"]);
    const all = await w.get("/v1/orgs/huge-org/repos?fields=name,visibility,archived", { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(all.status, 200);
    assert.deepEqual(names(all.body.repos), names(truth));
    const byName = new Map(truth.map((r) => [r.name, r]));
    for (const r of all.body.repos) {
      const t = byName.get(r.name);
      assert.equal(r.visibility, t.visibility.toLowerCase(), r.name);
      assert.equal(r.archived, t.isArchived, r.name);
    }
  } finally {
    await w.close();
  }
});

test("BUILD_CONCURRENCY caps the queries in flight: 1 pages in order without counts, 2 keeps two", async () => {
  for (const [cap, peak] of [["1", 1], ["2", 2]]) {
    const w = await startWorker({ BUILD_CONCURRENCY: cap }, { pageMs: 20 });
    try {
      const done = await untilBuilt(w, "/v1/orgs/huge-org/repos?fields=name");
      assert.equal(done.status, 200, cap);
      assert.equal(done.body.repos.length, 7_792, `${cap}: the public repositories, each once`);
      assert.equal(w.emu.stats.peakOwnerInFlight, peak, `BUILD_CONCURRENCY=${cap}`);
      const pages = ownerPages(w.emu, "huge-org");
      if (cap === "1") {
        assert.ok(pages.every((e) => e.part === null && !e.back && !e.query.includes("p0:")), "today's build exactly");
        assert.deepEqual(pages.map((e) => e.offset), Array.from({ length: 100 }, (_, i) => i * 100));
      } else {
        assert.ok(pages.slice(1).every((e) => e.part !== null), "the parts, side by side");
      }
    } finally {
      await w.close();
    }
  }
});

test("a one-page owner costs one request, counts included; a small owner pages in order", async () => {
  const w = await startWorker();
  try {
    const one = await w.get("/v1/orgs/small-org/repos?fields=name");
    assert.equal(one.status, 200);
    const pages = ownerPages(w.emu, "small-org");
    assert.equal(pages.length, 1);
    assert.ok(pages[0].query.includes("p0:"), "the plan was asked beside the page");
    // 250 repositories: three pages in order are as fast as, and cheaper than, twelve parts.
    const octo = await w.get("/v1/orgs/octo-org/repos?fields=name");
    assert.equal(octo.status, 200);
    assert.deepEqual(ownerPages(w.emu, "octo-org").map((e) => [e.part, e.offset]), [[null, 0], [null, 100], [null, 200]]);
  } finally {
    await w.close();
  }
});

test("a failing stream is asked again at half the size while the others keep theirs", async () => {
  const w = await startWorker({}, { pageMs: 20 });
  try {
    // The second page of a private part fails once.
    w.emu.faults.failOwnerPage = { index: 1, status: 502, times: 1, part: { visibility: "PRIVATE" } };
    const done = await untilBuilt(w, "/v1/orgs/huge-org/repos?fields=name");
    assert.equal(done.status, 200);
    assert.equal(done.body.repos.length, 7_792);
    const pages = ownerPages(w.emu, "huge-org");
    const failed = pages.find((e) => e.fault === "502");
    assert.ok(failed, "the fault was injected");
    assert.equal(failed.part.visibility, "PRIVATE");
    const same = (e) => JSON.stringify(e.part) === JSON.stringify(failed.part) && e.back === failed.back;
    const after = pages.slice(pages.indexOf(failed) + 1);
    const retried = after.filter(same);
    assert.ok(retried.length > 0 && retried.every((e) => e.first === 50), `its stream goes on at 50: ${retried.map((e) => e.first)}`);
    const others = after.filter((e) => !same(e));
    assert.ok(others.length > 10 && others.every((e) => e.first === 100), "the other streams keep 100");
  } finally {
    await w.close();
  }
});

test("a spent rate limit pauses every stream until the reset, then the build resumes and completes", async () => {
  const w = await startWorker({ GITHUB_BUDGET_RESERVE: "0", UPSTREAM_TIMEOUT_MS: "1000" }, { pageMs: 20 });
  try {
    // Twelve queries' budget: the build spends it within a few rounds; the reset is 4 s away.
    w.emu.rate.remaining = 12;
    const resetAt = Date.now() + 4000;
    w.emu.rate.resetAt = new Date(resetAt).toISOString().replace(/\.\d+Z$/, "Z");
    const first = await w.get("/v1/orgs/huge-org/repos?fields=name");
    assert.ok([202, 429].includes(first.status), `${first.status}`);
    await sleep(1500);
    const paused = await w.get("/v1/orgs/huge-org/repos?fields=name");
    assert.equal(paused.status, 429, "paused: the caller is told when to come back");
    const retry = Number(paused.headers.get("retry-after"));
    assert.ok(retry >= 1 && retry <= 4, `Retry-After ${retry} follows the reset`);
    const spentAt = w.emu.stats.log.find((e) => e.rateLimited)?.at ?? Date.now();
    // The alarm set for the reset resumes every stream; nobody needs to ask.
    await sleep(resetAt + 1500 - Date.now());
    const done = await untilBuilt(w, "/v1/orgs/huge-org/repos?fields=name");
    assert.equal(done.status, 200);
    assert.equal(done.body.repos.length, 7_792);
    // Between the first refusal and the reset no stream asked anything (a second after it at most,
    // the refusals of queries already in flight).
    const resetSecond = Math.floor(resetAt / 1000) * 1000;
    const between = w.emu.stats.log.filter((e) => !e.rest && e.at > spentAt + 1000 && e.at < resetSecond);
    assert.deepEqual(between.map((e) => e.at - spentAt), [], "every stream waits for the reset");
    const pages = ownerPages(w.emu, "huge-org").filter((e) => !e.rateLimited && e.status === 200);
    assert.equal(new Set(pages.map(pageId)).size, pages.length, "and no page was read twice");
  } finally {
    await w.close();
  }
});

test("a repository archived mid-build, after its old part was read, is listed once in its new state; its new part is read again", async () => {
  const w = await startWorker({ UPSTREAM_TIMEOUT_MS: "300" }, { pageMs: 300 });
  try {
    const started = await w.get("/v1/orgs/big-org/repos?fields=name,archived");
    assert.equal(started.status, 202);
    // Wait until the public active sources' first page (from the front) has been read.
    const active = (e) => e.part?.visibility === "PUBLIC" && e.part.isArchived === false && e.part.isFork === false && !e.back;
    for (let i = 0; i < 100 && !ownerPages(w.emu, "big-org").some((e) => active(e) && e.status === 200); i++) await sleep(50);
    const read = ownerPages(w.emu, "big-org").find((e) => active(e) && e.status === 200);
    assert.ok(read, "the part's first page was read");
    const archivedPart = (e) => e.part?.visibility === "PUBLIC" && e.part.isArchived === true && e.part.isFork === false;
    assert.ok(!ownerPages(w.emu, "big-org").some(archivedPart), "its new part is not read yet");
    // The first name of that page moves to the public archived part.
    const moved = fixtureRepos(w.emu, "big-org").find((r) => r.visibility === "PUBLIC" && !r.isArchived && !r.isFork);
    moved.isArchived = true;
    const done = await untilBuilt(w, "/v1/orgs/big-org/repos?fields=name,archived");
    assert.equal(done.status, 200);
    const listed = done.body.repos.filter((r) => r.name === moved.name);
    assert.deepEqual(listed, [{ name: moved.name, archived: true }], "once, archived");
    assert.equal(done.body.repos.length, fixtureRepos(w.emu, "big-org").filter((r) => r.visibility === "PUBLIC").length);
    // The archived part read one name more than its count said (nothing was heard): read again.
    const archivedPages = ownerPages(w.emu, "big-org").filter(archivedPart);
    assert.equal(archivedPages.length, 2, "its part is read again once, from the front");
    assert.ok(archivedPages.every((e) => e.offset === 0 && !e.back));
  } finally {
    await w.close();
  }
});
