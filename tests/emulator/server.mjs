// A local GitHub GraphQL emulator. Every query is parsed and validated against GitHub's published
// schema (@octokit/graphql-schema) before it is executed against demo data, so a query the real
// API would reject fails here too. It counts requests and records their variables for tests, and
// can inject faults (status codes, latency, garbage bodies) on request.
//
// Owner listings cost time the way GitHub's do: each `repositoryOwner { repositories }` page takes
// `pageMs * first / 100` ms (a smaller page is cheaper). Faults aimed at owner pages exercise adaptive
// page sizes and checkpointed builds: `maxPageSize` fails every page larger than N, `failOwnerPage`
// fails one chosen page a given number of times, `serverTimeoutMs` answers GitHub's timeout error for
// a page that would take longer. See `startEmulator` for the exact semantics.
import http from "node:http";
import { schema as githubSchema } from "@octokit/graphql-schema";
import { buildSchema, parse, validate, execute, GraphQLError } from "graphql";
import { demoForge } from "./fixtures.mjs";

let schemaCache;
function schema() {
  // The published SDL defines a couple of fields twice; GitHub serves it anyway, so do not re-check it.
  schemaCache ??= buildSchema(githubSchema.idl, { assumeValidSDL: true });
  return schemaCache;
}

const sleep = (ms) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

/** GitHub's own wording when a query runs into its 10 s server timeout (HTTP 200, `data: null`). */
export const TIMEOUT_ERROR_BODY = {
  data: null,
  errors: [{
    message: "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `ABCD:1234` when reporting this issue.",
  }],
};

/** What an injected owner-page failure answers: [HTTP status, body]. */
function failureAnswer(mode) {
  switch (String(mode)) {
    case "timeout-error":
      return [200, TIMEOUT_ERROR_BODY];
    case "504":
      return [504, { message: "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists." }];
    case "502":
      return [502, { message: "Server Error" }];
    default: {
      const status = Number(mode);
      if (!Number.isInteger(status) || status < 200 || status > 599) throw new Error(`unknown owner-page failure mode ${mode}`);
      return [status, { message: "injected fault" }];
    }
  }
}

// Sorting 10,000 repositories for every page would dominate a listing's run time: keep the sorted
// order per owner, rebuilt whenever a test adds, removes, replaces or renames a record.
const sortCache = new WeakMap();
function sortedByName(owner) {
  const repos = owner.repos;
  const c = sortCache.get(owner);
  if (c && c.items.length === repos.length && repos.every((r, i) => r === c.items[i] && r.name === c.names[i])) {
    return c.sorted;
  }
  const sorted = [...repos].sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
  sortCache.set(owner, { items: [...repos], names: repos.map((r) => r.name), sorted });
  return sorted;
}

class NotFound extends Error {
  constructor(message) {
    super(message);
    this.type = "NOT_FOUND";
  }
}

function encodeCursor(i) {
  return Buffer.from(`cursor:v2:${i}`).toString("base64");
}

function decodeCursor(c) {
  const m = /^cursor:v2:(\d+)$/.exec(Buffer.from(c, "base64").toString());
  if (!m) throw new GraphQLError("`after` is not a valid cursor");
  return Number(m[1]);
}

// `page({ login, first, after, start })` is awaited once per owner page before the page is made;
// it sleeps for the page's cost and decides whether an injected fault fails the request.
function ownerValue(owner, page) {
  return {
    __typename: owner.__typename,
    login: owner.login,
    repositories: async ({ first, after, ownerAffiliations, orderBy }) => {
      if (first == null || first < 1 || first > 100) {
        throw new GraphQLError("Requesting 101 records on the `repositories` connection exceeds the `first` limit of 100 records.");
      }
      let repos = owner.repos;
      if (ownerAffiliations && !ownerAffiliations.includes("OWNER")) repos = [];
      else if (orderBy?.field === "NAME") {
        repos = sortedByName(owner);
        if (orderBy.direction === "DESC") repos = [...repos].reverse();
      }
      const start = after ? decodeCursor(after) + 1 : 0;
      await page({ login: owner.login, first, after: after ?? null, start });
      const nodes = repos.slice(start, start + first);
      const end = start + nodes.length - 1;
      return {
        nodes,
        totalCount: repos.length,
        pageInfo: {
          hasNextPage: end + 1 < repos.length,
          endCursor: nodes.length ? encodeCursor(end) : null,
          hasPreviousPage: start > 0,
          startCursor: nodes.length ? encodeCursor(start) : null,
        },
      };
    },
  };
}

/**
 * Starts the emulator. Returns { url, port, stats, faults, forge, rate, reset(), close() }.
 *
 * Options (each also settable at run time on `faults`, and restored by `reset()`):
 * - port (0 = any), host, forge (demo data, default `demoForge()`).
 * - latencyMs (default 0): added to every request, REST included.
 * - pageMs (default 0): cost of one owner-listing page (`repositoryOwner { repositories }`) of
 *   100 repositories; a page of `first` repositories takes `pageMs * first / 100` ms.
 * - maxPageSize (default null = off), maxPageSizeMode (default "502"): an owner page asked with
 *   `first > maxPageSize` fails every time, after its page cost: "502" (HTTP 502), "504" (HTTP 504)
 *   or "timeout-error" (HTTP 200 with `data: null` and GitHub's "Something went wrong …" error).
 * - serverTimeoutMs (default null = off): an owner page whose cost exceeds it is answered after
 *   serverTimeoutMs with the "timeout-error" body, like GitHub's 10 s server timeout.
 * - failOwnerPage (default null): `{ index, status = 502, times = 1, owner? }` — the `index`-th
 *   (0-based) owner page asked for after this object was set (counting only `owner`'s pages when
 *   given) fails, and so does every later request for that same page (same owner and cursor, any
 *   `first`), until `times` failures have been answered; then it is served normally. `status` is
 *   502, 504, another HTTP status (body `{"message":"injected fault"}`) or "timeout-error".
 *   Assign a new object to arm it again.
 * Precedence: `status`/`body` (every GraphQL request, before parsing), then failOwnerPage, then
 * maxPageSize, then serverTimeoutMs. Injected owner-page failures do not spend rate limit.
 *
 * stats: requests (GraphQL POSTs), owner (valid owner queries, failed ones included), batch,
 * invalid, rest, ownerPages (owner pages answered with data), ownerPageFaults (owner pages failed
 * by injection), log (one entry per GraphQL POST: userAgent, authorization, variables, query,
 * kind "owner" | "batch", status (HTTP status answered), at and answeredAt (`Date.now()` when the
 * request arrived and when its status was written), and for owner pages: owner (login as
 * stored), first, after (cursor or null), offset (index of the page's first repository in the
 * listing), ms (the page's simulated cost), fault (null, "502", "504", "timeout-error", another
 * status, or "server-timeout")).
 */
export async function startEmulator(opts = {}) {
  const forge = opts.forge ?? demoForge();
  const freshStats = () => ({ requests: 0, owner: 0, batch: 0, invalid: 0, rest: 0, ownerPages: 0, ownerPageFaults: 0, log: [] });
  const freshFaults = () => ({
    status: null, body: null, latencyMs: opts.latencyMs ?? 0, headers: {},
    pageMs: opts.pageMs ?? 0,
    maxPageSize: opts.maxPageSize ?? null,
    maxPageSizeMode: opts.maxPageSizeMode ?? "502",
    serverTimeoutMs: opts.serverTimeoutMs ?? null,
    failOwnerPage: opts.failOwnerPage ?? null,
  });
  const stats = freshStats();
  const faults = freshFaults();
  // Progress of each armed `failOwnerPage` object: pages seen, the page chosen, failures answered.
  let failState = new WeakMap();
  const rate = { remaining: 5000, resetAt: new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, "Z") };

  function findRepo(owner, name) {
    let key = `${owner}/${name}`.toLowerCase();
    key = forge.renames.get(key) ?? key;
    const [o, n] = key.split("/");
    return forge.owners.get(o)?.repos.find((r) => r.name.toLowerCase() === n) ?? null;
  }

  const rootValue = {
    rateLimit: () => ({ cost: 1, remaining: rate.remaining, resetAt: rate.resetAt, limit: 5000, used: 5000 - rate.remaining, nodeCount: 100 }),
    repositoryOwner: ({ login }, ctx) => {
      const o = forge.owners.get(login.toLowerCase());
      return o ? ownerValue(o, (p) => ownerPage(ctx, p)) : null;
    },
    repository: ({ owner, name }) => {
      const r = findRepo(owner, name);
      if (!r) throw new NotFound(`Could not resolve to a Repository with the name '${owner}/${name}'.`);
      return r;
    },
  };

  /** Applies the cost model and the owner-page faults to one page; records it in the log entry. */
  async function ownerPage(ctx, { login, first, after, start }) {
    const lower = login.toLowerCase();
    let ms = Math.round(((Number(faults.pageMs) || 0) * first) / 100);
    let mode = null;
    const f = faults.failOwnerPage;
    if (f && (f.owner == null || String(f.owner).toLowerCase() === lower)) {
      let st = failState.get(f);
      if (!st) failState.set(f, (st = { seen: 0, target: null, failed: 0 }));
      if (!st.target && st.seen++ === (f.index ?? 0)) st.target = { lower, start };
      if (st.target && st.target.lower === lower && st.target.start === start && st.failed < (f.times ?? 1)) {
        st.failed++;
        mode = String(f.status ?? 502);
      }
    }
    if (mode == null && faults.maxPageSize != null && first > faults.maxPageSize) mode = String(faults.maxPageSizeMode ?? "502");
    let fault = mode;
    if (mode == null && faults.serverTimeoutMs != null && ms > faults.serverTimeoutMs) {
      ms = faults.serverTimeoutMs;
      mode = "timeout-error";
      fault = "server-timeout";
    }
    Object.assign(ctx.entry, { owner: login, first, after, offset: start, ms, fault });
    await sleep(ms);
    if (mode != null) ctx.failure ??= mode;
    ctx.pages++;
  }

  function answer(res, status, body, extraHeaders = {}) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...extraHeaders });
    res.end(text);
  }

  async function handle(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    // REST-style `GET /repos/{owner}/{repo}`: the per-repository baseline the benchmark compares
    // against (one call per repository, as dashboards without forgelens do).
    const rest = /^\/repos\/([^/]+)\/([^/?]+)$/.exec(req.url);
    if (req.method === "GET" && rest) {
      stats.rest++;
      if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
      const r = findRepo(decodeURIComponent(rest[1]), decodeURIComponent(rest[2]));
      if (!r) return answer(res, 404, { message: "Not Found" });
      return answer(res, 200, {
        name: r.name, full_name: r.nameWithOwner, private: r.isPrivate, visibility: r.visibility.toLowerCase(),
        html_url: r.url, description: r.description, fork: r.isFork, archived: r.isArchived, disabled: r.isDisabled,
        default_branch: r.defaultBranchRef?.name ?? null, pushed_at: r.pushedAt, updated_at: r.updatedAt,
        language: r.primaryLanguage?.name ?? null, owner: { login: r.owner.login },
      });
    }
    if (req.method !== "POST" || !req.url.startsWith("/graphql")) {
      return answer(res, 404, { message: "Not Found" });
    }
    stats.requests++;
    const entry = { userAgent: req.headers["user-agent"], authorization: req.headers.authorization ?? null, at: Date.now() };
    stats.log.push(entry);
    const answered = res.writeHead.bind(res);
    res.writeHead = (status, ...rest) => {
      entry.status = status;
      entry.answeredAt = Date.now();
      return answered(status, ...rest);
    };
    if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.status || faults.body != null) {
      return answer(res, faults.status ?? 200, faults.body ?? { message: "injected fault" }, faults.headers);
    }
    let payload;
    try {
      payload = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      stats.invalid++;
      return answer(res, 400, { message: "Problems parsing JSON" });
    }
    entry.variables = payload.variables ?? {};
    entry.query = payload.query;
    let doc;
    try {
      doc = parse(payload.query);
    } catch (e) {
      stats.invalid++;
      return answer(res, 200, { errors: [{ message: e.message }] });
    }
    const problems = validate(schema(), doc);
    if (problems.length) {
      stats.invalid++;
      entry.invalid = problems.map((p) => p.message);
      return answer(res, 200, { errors: problems.map((p) => ({ message: p.message, locations: p.locations })) });
    }
    const isBatch = /\br0:\s*repository\b/.test(payload.query);
    if (isBatch) stats.batch++;
    else stats.owner++;
    entry.kind = isBatch ? "batch" : "owner";
    const ctx = { entry, pages: 0, failure: null };
    const result = await execute({ schema: schema(), document: doc, rootValue, contextValue: ctx, variableValues: payload.variables });
    if (ctx.failure != null) {
      stats.ownerPageFaults++;
      const [status, failBody] = failureAnswer(ctx.failure);
      return answer(res, status, failBody);
    }
    stats.ownerPages += ctx.pages;
    rate.remaining = Math.max(0, rate.remaining - 1);
    const body = { data: result.data ?? null };
    if (result.errors?.length) {
      body.errors = result.errors.map((e) => ({
        type: e.originalError?.type,
        path: e.path,
        locations: e.locations,
        message: e.message,
      }));
    }
    answer(res, 200, body);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => answer(res, 500, { message: String(e) }));
  });
  await new Promise((resolve) => server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", resolve));
  const { port } = server.address();
  // Building the 6 MB schema takes a moment; do it before the first request is timed.
  schema();
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    port,
    stats,
    faults,
    forge,
    rate,
    reset() {
      Object.assign(stats, freshStats());
      Object.assign(faults, freshFaults());
      failState = new WeakMap();
    },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

// `node tests/emulator/server.mjs [port] [--port N] [--page-ms MS]` runs it on its own (the dev
// command does this). Standalone, owner pages cost what they cost on GitHub: 1000 ms per 100
// repositories by default (EMULATOR_PAGE_MS or --page-ms; --page-ms 0 turns it off).
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop())) {
  const usage = "usage: node tests/emulator/server.mjs [port] [--port N] [--page-ms MS]";
  const number = (name, v) => {
    const n = Number(v);
    if (v === undefined || v === "" || !Number.isFinite(n) || n < 0) {
      console.error(`${name}: expected a number >= 0, got ${v ?? "nothing"}\n${usage}`);
      process.exit(2);
    }
    return n;
  };
  let port = process.env.EMULATOR_PORT ?? "8788";
  let pageMs = process.env.EMULATOR_PAGE_MS ?? "1000";
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const [flag, inline] = a.startsWith("--") && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (flag === "--page-ms") pageMs = inline ?? args[++i];
    else if (flag === "--port") port = inline ?? args[++i];
    else if (flag === "--help" || flag === "-h") { console.log(usage); process.exit(0); }
    else if (/^\d+$/.test(a)) port = a;
    else { console.error(`unknown argument ${a}\n${usage}`); process.exit(2); }
  }
  const emu = await startEmulator({ port: number("port", port), pageMs: number("--page-ms", pageMs) });
  const orgs = [...emu.forge.owners.values()].map((o) => `${o.login} (${o.repos.length})`).join(", ");
  console.log(`GitHub emulator listening on ${emu.url}`);
  console.log(`demo owners: ${orgs}`);
  console.log(`owner listing pages cost ${emu.faults.pageMs} ms per 100 repositories (--page-ms)`);
}
