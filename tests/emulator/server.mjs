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
//
// It also plays GitHub's webhooks (tests/emulator/hooks.mjs): hooks that deliver signed events to the
// worker, every attempt recorded, and GitHub's deliveries API to list and redeliver them. USAGE below
// lists the standalone flags and the `/_emulator/…` control routes.
import http from "node:http";
import { schema as githubSchema } from "@octokit/graphql-schema";
import { buildSchema, parse, validate, execute, GraphQLError } from "graphql";
import { demoForge } from "./fixtures.mjs";
import { appState, verifyAppJwt, newInstallationToken, rfc3339, generateAppKey, DEFAULT_APP_ID } from "./app.mjs";
import { createHooks, DEFAULT_HOOK_TIMEOUT_MS, rateHeaders } from "./hooks.mjs";

/** Flags and control routes of the standalone emulator (`--help` prints this). */
export const USAGE = `usage: node tests/emulator/server.mjs [port] [options]
  --port N                 port (default 8788, EMULATOR_PORT)
  --page-ms MS             cost of one 100-repository owner page (default 1000, EMULATOR_PAGE_MS; 0: none)
  --app-key-out DIR        GitHub App mode: writes a fresh App key (DIR/app-private-key.pem, PKCS#1) and DIR/app-id
  --deliver-to URL         the worker's webhook route (e.g. http://127.0.0.1:8787/v1/webhooks/github): it gets
                           a hook (the App's in App mode, else octo-org's organization hook) and the live demo
  --deliver-secret S       the hooks' secret (the worker's GITHUB_WEBHOOK_SECRET); needed with --deliver-to
  --deliver-every MS       live demo: turn an octo-org CI state and send its check_suite every MS ms to every
                           hook it concerns (default 5000; 0: no live demo, hooks only)
  --deliver-hook T[@ID]    a hook to --deliver-to instead of the default, repeatable: T is app,
                           organization:<login> or repository:<owner>/<repo>; ID its hook id (default: 7001, …)
  --hook-timeout-ms MS     a delivery not answered within MS fails (default 10000, GitHub's)

GitHub's webhook deliveries API (newest first; per_page 1-100, default 30; cursor from the Link header):
  GET  /app/hook/deliveries[?per_page=N&cursor=C&status=success|failure&redelivery=true|false]   App JWT
  GET  /orgs/{org}/hooks/{hook_id}/deliveries[?…]          a token (Authorization: Bearer|token …)
  GET  /repos/{owner}/{repo}/hooks/{hook_id}/deliveries[?…]
  GET  …/deliveries/{delivery_id}                           one delivery with its request and response
  POST …/deliveries/{delivery_id}/attempts                  202 {}, then sent again (same guid, new id)

Control routes (JSON bodies; answers JSON):
  GET    /_emulator/stats                      request counts (GraphQL, App, deliveries API) and hooks
  GET    /_emulator/hooks                      every hook (id, target, url, faults, calls; no secret)
  POST   /_emulator/hooks                      {"id"?, "target", "url", "secret"?, "events"?} add (201) or update (200)
  GET    /_emulator/hooks/{id}                 one hook;  DELETE removes it
  GET    /_emulator/hooks/{id}/deliveries      its deliveries, newest first, with request and response
  POST   /_emulator/hooks/{id}/send            {"event", "action"?, "payload", "guid"?}: deliver now; answers the delivery
  POST   /_emulator/events                     {"event", "action"?, "payload"}: deliver to every hook it concerns
                                               (one guid); answers {"guid", "deliveries": [...]}
  POST   /_emulator/hooks/{id}/fail-next       {"count"?: 1}: the next deliveries fail unsent ("failed to connect to host")
  POST   /_emulator/hooks/{id}/faults          any of {"unreachable": bool, "failNext": N, "deny": 401|403|404|null,
                                               "failLists": N, "failAttempts": N, "errorStatus": 5xx,
                                               "rateLimitS": S, "retryAfterS": S}; DELETE clears them
  e.g. curl -X POST http://127.0.0.1:8788/_emulator/hooks/7001/fail-next`;

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

// Public repositories of a sorted listing, cached per listing array (an installation token of
// another owner pages through this instead of the full listing).
const publicCache = new WeakMap();
function publicOnly(repos) {
  let p = publicCache.get(repos);
  if (!p) publicCache.set(repos, (p = repos.filter((r) => !r.isPrivate)));
  return p;
}

// `page({ login, first, after, start })` is awaited once per owner page before the page is made;
// it sleeps for the page's cost and decides whether an injected fault fails the request.
// `onlyPublic`: the caller may not see this owner's private and internal repositories.
function ownerValue(owner, page, onlyPublic = false) {
  return {
    __typename: owner.__typename,
    login: owner.login,
    // As GitHub's connection: `first`/`after` from the front or `last`/`before` from the back,
    // and the `visibility`, `isArchived` and `isFork` filters (partitioned builds page each part
    // from both ends). A cursor is a position in the filtered listing, as stable as GitHub's.
    repositories: async ({ first, last, after, before, ownerAffiliations, orderBy, visibility, isArchived, isFork }, _ctx, info) => {
      const n = first ?? last;
      if (n == null || (first != null && last != null)) {
        throw new GraphQLError("You must provide a `first` or `last` value to properly paginate the `repositories` connection.");
      }
      if (n < 1 || n > 100) {
        const arg = first != null ? "first" : "last";
        throw new GraphQLError(`Requesting ${n} records on the \`repositories\` connection exceeds the \`${arg}\` limit of 100 records.`);
      }
      let repos = owner.repos;
      if (ownerAffiliations && !ownerAffiliations.includes("OWNER")) repos = [];
      else if (orderBy?.field === "NAME") {
        repos = sortedByName(owner);
        if (orderBy.direction === "DESC") repos = [...repos].reverse();
      }
      // (a sorted listing is never mutated, so it may be cached; the owner's own array may change)
      if (onlyPublic) repos = repos === owner.repos ? repos.filter((r) => !r.isPrivate) : publicOnly(repos);
      if (visibility != null || isArchived != null || isFork != null) {
        repos = repos.filter((r) => (visibility == null || r.visibility === visibility)
          && (isArchived == null || r.isArchived === isArchived) && (isFork == null || r.isFork === isFork));
      }
      let start;
      let stop;
      if (first != null) {
        start = after ? decodeCursor(after) + 1 : 0;
        stop = Math.min(repos.length, start + n);
      } else {
        stop = before ? Math.min(repos.length, decodeCursor(before)) : repos.length;
        start = Math.max(0, stop - n);
      }
      // A count alone (`p0: repositories(first: 1, …) { totalCount }`, no nodes asked) costs no
      // page and is no page of the log (GitHub counts it in the query's cost only).
      const asksNodes = info?.fieldNodes?.[0]?.selectionSet?.selections?.some((f) => f.name?.value === "nodes") ?? true;
      if (!asksNodes) return { nodes: [], totalCount: repos.length, pageInfo: { hasNextPage: false, endCursor: null, hasPreviousPage: false, startCursor: null } };
      const part = visibility != null || isArchived != null || isFork != null
        ? { visibility: visibility ?? null, isArchived: isArchived ?? null, isFork: isFork ?? null } : null;
      await page({ login: owner.login, first: n, after: after ?? before ?? null, start, part, back: last != null });
      const nodes = repos.slice(start, Math.max(start, stop));
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
 * Starts the emulator. Returns { url, origin, port, stats, faults, forge, rate, app, hooks, reset(), close() }.
 * `url` is the GraphQL endpoint, `origin` the REST base (GITHUB_API_URL).
 *
 * Options (each also settable at run time on `faults`, and restored by `reset()`):
 * - port (0 = any), host, forge (demo data, default `demoForge()`).
 * - latencyMs (default 0): added to every request, REST included.
 * - pageMs (default 0): cost of one owner-listing page (`repositoryOwner { repositories }`) of
 *   100 repositories; a page of `first` repositories takes `pageMs * first / 100` ms.
 * - restMs (default 0): cost of one REST `GET /repos/{owner}/{repo}` (one repository), added to
 *   latencyMs. With `restMs = pageMs / 100` a page of 100 costs what 100 single lookups cost
 *   (the benchmark's per-node cost model).
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
 *   `part` (`{ visibility?, isArchived?, isFork? }`) counts only pages of the parts it matches.
 *   A page is the same page when its owner, part, end and position in the part are. Assign a new
 *   object to arm it again.
 * - app (default null = off): GitHub App mode, `{ id = 12345, publicKeyPem, installations?,
 *   tokenTtlS = 3600 }` (see "GitHub App mode" below). `appStatus`/`appBody` on `faults` (run time
 *   only) answer every App REST request with that status/body before its JWT is checked.
 * - hooks (default []): webhooks to configure at start, `[{ id?, target, url, secret?, events? }]`;
 *   hookTimeoutMs (default 10,000, GitHub's): a delivery not answered within it fails. See
 *   "Webhooks" below.
 * Precedence: `status`/`body` (every GraphQL request, before parsing), then failOwnerPage, then
 * maxPageSize, then serverTimeoutMs. Injected owner-page failures do not spend rate limit.
 *
 * stats: requests (GraphQL POSTs), owner (valid owner queries, failed ones included), batch,
 * invalid, rest, ownerPages (owner pages answered with data; a count alone is none),
 * ownerPageFaults (owner pages failed by injection), ownerInFlight and peakOwnerInFlight (owner
 * queries being answered, and the most at once), log (one entry per GraphQL POST: userAgent, authorization, variables, query,
 * kind "owner" | "batch", status (HTTP status answered), at and answeredAt (`Date.now()` when the
 * request arrived and when its status was written), and for owner pages: owner (login as
 * stored), first, after (cursor or null; `before`'s from the back), offset (index of the page's
 * first repository in the listing, or in its part), part (`{ visibility, isArchived, isFork }` or
 * null for the whole listing), back (asked with `last`/`before`), ms (the page's simulated cost), fault (null, "502", "504", "timeout-error", another
 * status, or "server-timeout"), and `auth`: "none", "token", "installation:<id>",
 * "installation:unknown" or "app-jwt"). App mode adds installationLookups, tokenRequests,
 * tokensIssued (201s), appAuthFailures (App REST requests answered 401), badCredentials (GraphQL
 * requests answered 401) and log entries `{ rest: "installation", owner, kind: "org"|"user", id?,
 * status, jwtError? }` / `{ rest: "access_tokens", id, owner?, expires_at?, status, jwtError? }`
 * (never a token or JWT; filter GraphQL entries with `e.rest === undefined`).
 *
 * GitHub App mode (opts.app; `emu.app` holds its state, mutable at run time):
 * - `GET /orgs/{org}/installation`, `GET /users/{user}/installation`: App JWT required (RS256,
 *   verified with publicKeyPem; iss = app id; iat <= now + 60 s; now < exp <= now + 600 s),
 *   else 401. 200 with the installation of an owner of that type that has the App installed, else
 *   404. `app.installations` (Map lowercased login → id; option: object or Map) defaults to every
 *   forge owner but `octocat`, id 1000 + the owner's index in the forge.
 * - `POST /app/installations/{id}/access_tokens`: App JWT required; 404 for an id not in
 *   `app.installations`; 201 `{ token: "ghs_…", expires_at (now + app.tokenTtlS), permissions,
 *   repository_selection: "all" }`. Issued tokens are kept in `app.tokens` (token → { id, expiresMs }).
 * - GraphQL with `ghs_` tokens: unknown, expired, or of an installation no longer in
 *   `app.installations` → 401 "Bad credentials"; a valid one sees private and internal
 *   repositories of its installation's owner only (others: `repository` null + NOT_FOUND, listings
 *   public only) and spends its own rate limit (`app.rates`: id → { remaining, resetAt }, created
 *   at first use). An App JWT on GraphQL → 401. Any other token sees everything.
 *
 * Webhooks (`emu.hooks`, tests/emulator/hooks.mjs has the details): the emulator keeps hooks — the
 * App's (App mode), organizations', repositories' — sends them signed deliveries with GitHub's
 * headers, records every attempt with GitHub's delivery fields, and serves GitHub's deliveries API:
 * `GET /app/hook/deliveries` (App JWT), `GET /orgs/{org}/hooks/{id}/deliveries`,
 * `GET /repos/{owner}/{repo}/hooks/{id}/deliveries` (a token), `GET …/deliveries/{delivery_id}`,
 * `POST …/deliveries/{delivery_id}/attempts` (202, then sent again: same guid, new id). In process:
 * `emu.hooks.add(spec)`, `.send(hookId, { event, action?, payload })` and `.emit({ event, payload })`
 * (resolve to the record(s)), `.idle()` (redeliveries under way are done), `.get(id).faults`,
 * `.timeoutMs`, `.backdate(id, s)`. Over HTTP: the `/_emulator/…` routes in the CLI usage below.
 * stats adds deliveryLists, deliveryGets, redeliveryRequests (deliveries API calls, refused ones
 * included), deliveriesSent (delivery attempts recorded) and log entries `{ rest: "hook_deliveries"
 * | "hook_delivery" | "hook_attempts", kind, hook, delivery?, per_page?, cursor?, count?, auth,
 * status, fault?, rateLimited? }`. `reset()` clears the hooks' faults and call counts, not the hooks
 * or their deliveries (`emu.hooks.clear()` forgets those).
 *
 * Refused as GitHub refuses (tests meet what the worker will meet):
 * - GraphQL without an `Authorization` header: 401 "This endpoint requires you to be authenticated."
 *   (logged with `auth: "none"`, `authError: "anonymous"`).
 * - A spent budget: each credential has `{ limit, remaining, resetAt }` (`emu.rate` for tokens,
 *   `app.rates` per installation; `opts.rateLimit` sets the limit, default 5,000). A request at
 *   `remaining: 0` before `resetAt` is answered HTTP 200 `{"errors":[{"type":"RATE_LIMITED",…}]}`
 *   without running the query (`stats.rateLimited`, log `rateLimited: true`); at `resetAt` the
 *   budget refills. A served query costs 1; its `rateLimit { remaining }` is what is left after
 *   it. Served and refused GraphQL answers carry `x-ratelimit-{limit,remaining,used,reset,resource}`.
 * - An exception inside the emulator answers 500 and is kept in `emu.thrown`: the e2e harness
 *   fails the test that caused it, so the emulator's own bug never passes for a GitHub 5xx.
 */
export async function startEmulator(opts = {}) {
  const forge = opts.forge ?? demoForge();
  const freshStats = () => ({
    requests: 0, owner: 0, batch: 0, invalid: 0, rest: 0, ownerPages: 0, ownerPageFaults: 0, rateLimited: 0,
    installationLookups: 0, tokenRequests: 0, tokensIssued: 0, appAuthFailures: 0, badCredentials: 0,
    deliveryLists: 0, deliveryGets: 0, redeliveryRequests: 0, deliveriesSent: 0,
    // Owner queries being answered now, and the most at once (a partitioned build's concurrency).
    ownerInFlight: 0, peakOwnerInFlight: 0,
    log: [],
  });
  const freshFaults = () => ({
    status: null, body: null, latencyMs: opts.latencyMs ?? 0, headers: {},
    pageMs: opts.pageMs ?? 0,
    restMs: opts.restMs ?? 0,
    maxPageSize: opts.maxPageSize ?? null,
    maxPageSizeMode: opts.maxPageSizeMode ?? "502",
    serverTimeoutMs: opts.serverTimeoutMs ?? null,
    failOwnerPage: opts.failOwnerPage ?? null,
    appStatus: null, appBody: null,
  });
  const stats = freshStats();
  const faults = freshFaults();
  // Progress of each armed `failOwnerPage` object: pages seen, the page chosen, failures answered.
  let failState = new WeakMap();
  // The token's budget: GitHub's 5,000 points an hour (opts.rateLimit for benchmarks that ask more).
  const limit = opts.rateLimit ?? 5000;
  const rate = { limit, remaining: limit, resetAt: rfc3339(Date.now() + 3600_000) };
  // Exceptions the emulator threw while answering: a harness fails the test when there are any,
  // so a 500 of the emulator's own making is never taken for GitHub's.
  const thrown = [];
  // GitHub App mode (opts.app): installations, issued tokens, per-installation rate limits.
  const app = opts.app ? appState(opts.app, forge) : null;
  const rateOf = (installationId) => {
    let r = app.rates.get(installationId);
    if (!r) app.rates.set(installationId, (r = { limit, remaining: limit, resetAt: rfc3339(Date.now() + 3600_000) }));
    return r;
  };
  // Webhooks: hooks, their deliveries, and GitHub's deliveries API (tests/emulator/hooks.mjs).
  const hooks = createHooks({ forge, app, stats, faults, thrown, timeoutMs: opts.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS });
  for (const spec of opts.hooks ?? []) hooks.add(spec);
  /** Lowercased login of the owner an installation id belongs to, or null (unknown / uninstalled). */
  const installationOwner = (id) => {
    for (const [login, iid] of app?.installations ?? []) if (iid === id) return login;
    return null;
  };

  function findRepo(owner, name) {
    let key = `${owner}/${name}`.toLowerCase();
    key = forge.renames.get(key) ?? key;
    const [o, n] = key.split("/");
    return forge.owners.get(o)?.repos.find((r) => r.name.toLowerCase() === n) ?? null;
  }

  const rootValue = {
    // What is left once this query's cost is paid, as GitHub reports it.
    rateLimit: (_args, ctx) => {
      const r = ctx.rate;
      const remaining = Math.max(0, r.remaining - 1);
      return { cost: 1, remaining, resetAt: r.resetAt, limit: r.limit, used: r.limit - remaining, nodeCount: 100 };
    },
    repositoryOwner: ({ login }, ctx) => {
      const lower = login.toLowerCase();
      const o = forge.owners.get(lower);
      // An installation token sees private and internal repositories of its own owner only.
      const onlyPublic = ctx.scope != null && ctx.scope !== lower;
      return o ? ownerValue(o, (p) => ownerPage(ctx, p), onlyPublic) : null;
    },
    repository: ({ owner, name }, ctx) => {
      const r = findRepo(owner, name);
      const hidden = r && r.isPrivate && ctx.scope != null && ctx.scope !== r.owner.login.toLowerCase();
      if (!r || hidden) throw new NotFound(`Could not resolve to a Repository with the name '${owner}/${name}'.`);
      return r;
    },
  };

  /** Applies the cost model and the owner-page faults to one page; records it in the log entry. */
  async function ownerPage(ctx, { login, first, after, start, part = null, back = false }) {
    const lower = login.toLowerCase();
    let ms = Math.round(((Number(faults.pageMs) || 0) * first) / 100);
    let mode = null;
    const f = faults.failOwnerPage;
    // A page is its owner, its part (or the whole listing), its end and its position there.
    const where = `${lower} ${JSON.stringify(part)} ${back} ${start}`;
    const inPart = f?.part == null || (part != null && Object.entries(f.part).every(([k, v]) => part[k] === v));
    if (f && (f.owner == null || String(f.owner).toLowerCase() === lower) && inPart) {
      let st = failState.get(f);
      if (!st) failState.set(f, (st = { seen: 0, target: null, failed: 0 }));
      if (!st.target && st.seen++ === (f.index ?? 0)) st.target = where;
      if (st.target === where && st.failed < (f.times ?? 1)) {
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
    Object.assign(ctx.entry, { owner: login, first, after, offset: start, ms, fault, part, back });
    await sleep(ms);
    if (mode != null) ctx.failure ??= mode;
    ctx.pages++;
  }

  function answer(res, status, body, extraHeaders = {}) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...extraHeaders });
    res.end(text);
  }

  /**
   * The GitHub App REST endpoints (App mode only): installation lookups and installation access
   * tokens, both authenticated with an App JWT. Returns false when the request is not one of them.
   */
  async function handleApp(req, res, path) {
    const inst = /^\/(orgs|users)\/([^/]+)\/installation$/.exec(path);
    const tok = /^\/app\/installations\/([^/]+)\/access_tokens$/.exec(path);
    if (!(req.method === "GET" && inst) && !(req.method === "POST" && tok)) return false;
    const entry = inst
      ? { rest: "installation", owner: decodeURIComponent(inst[2]), kind: inst[1] === "orgs" ? "org" : "user" }
      : { rest: "access_tokens", id: /^\d+$/.test(tok[1]) ? Number(tok[1]) : tok[1] };
    if (inst) stats.installationLookups++;
    else stats.tokenRequests++;
    stats.log.push(entry);
    const reply = (status, body) => {
      entry.status = status;
      answer(res, status, body);
      return true;
    };
    if (faults.latencyMs) await sleep(faults.latencyMs);
    if (faults.appStatus || faults.appBody != null) {
      entry.fault = true;
      return reply(faults.appStatus ?? 500, faults.appBody ?? { message: "injected fault" });
    }
    const jwt = verifyAppJwt(req.headers.authorization, app);
    if (!jwt.ok) {
      stats.appAuthFailures++;
      entry.jwtError = jwt.reason;
      return reply(401, jwt.body);
    }
    const notFound = { message: "Not Found", documentation_url: "https://docs.github.com/rest" };
    if (inst) {
      const lower = entry.owner.toLowerCase();
      const o = forge.owners.get(lower);
      const id = app.installations.get(lower);
      const wantType = inst[1] === "orgs" ? "Organization" : "User";
      if (!o || o.__typename !== wantType || id == null) return reply(404, notFound);
      entry.id = id;
      return reply(200, installationBody(id, o));
    }
    const owner = installationOwner(entry.id);
    if (owner == null) return reply(404, notFound);
    const expiresMs = Math.floor((Date.now() + Number(app.tokenTtlS) * 1000) / 1000) * 1000;
    const token = newInstallationToken();
    app.tokens.set(token, { id: entry.id, expiresMs });
    stats.tokensIssued++;
    entry.owner = forge.owners.get(owner)?.login ?? owner;
    entry.expires_at = rfc3339(expiresMs);
    return reply(201, {
      token,
      expires_at: rfc3339(expiresMs),
      permissions: { ...app.permissions },
      repository_selection: "all",
    });
  }

  function installationBody(id, o) {
    const origin = `http://127.0.0.1:${port}`;
    return {
      id,
      account: { login: o.login, id: 9000 + id, type: o.__typename, site_admin: false },
      repository_selection: "all",
      access_tokens_url: `${origin}/app/installations/${id}/access_tokens`,
      repositories_url: `${origin}/installation/repositories`,
      html_url: `https://github.com/${o.__typename === "Organization" ? `organizations/${o.login}/settings` : "settings"}/installations/${id}`,
      app_id: app.id,
      app_slug: "forgelens-emulator",
      target_id: 9000 + id,
      target_type: o.__typename,
      permissions: { ...app.permissions },
      events: ["repository", "public", "push", "status", "check_suite", "workflow_run"],
      created_at: "2026-01-01T00:00:00Z",
      updated_at: "2026-01-01T00:00:00Z",
      single_file_name: null,
      has_multiple_single_files: false,
      single_file_paths: [],
      suspended_by: null,
      suspended_at: null,
    };
  }

  /**
   * Which credential a GraphQL request carries: `{ auth, scope, rate, error }`. `auth` is
   * "none", "token" (any token the emulator did not issue, handled as before: sees everything),
   * "installation:<id>" (an issued `ghs_` token; `scope` = its owner's lowercased login),
   * "installation:unknown" (a `ghs_` token never issued) or, in App mode, "app-jwt" (an App JWT,
   * which GitHub does not accept on GraphQL). `error` (reason) means the request answers 401.
   */
  function graphqlAuth(authorization) {
    // GitHub's GraphQL API serves no anonymous caller.
    if (authorization == null || authorization === "") return { auth: "none", scope: null, rate, error: "anonymous" };
    const value = /^(?:bearer|token)\s+(\S+)\s*$/i.exec(authorization)?.[1] ?? "";
    if (value.startsWith("ghs_")) {
      const t = app?.tokens.get(value);
      if (!t) return { auth: "installation:unknown", scope: null, rate, error: "unknown" };
      const auth = `installation:${t.id}`;
      if (Date.now() >= t.expiresMs) return { auth, scope: null, rate, error: "expired" };
      const owner = installationOwner(t.id);
      if (owner == null) return { auth, scope: null, rate, error: "uninstalled" };
      return { auth, scope: owner, rate: rateOf(t.id), error: null };
    }
    if (app && /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/.test(value)) return { auth: "app-jwt", scope: null, rate, error: "jwt" };
    return { auth: "token", scope: null, rate, error: null };
  }

  async function handle(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const path = req.url.split("?")[0];
    if (await hooks.handle(req, res, path, Buffer.concat(chunks))) return;
    if (app && (await handleApp(req, res, path))) return;
    // REST-style `GET /repos/{owner}/{repo}`: the per-repository baseline the benchmark compares
    // against (one call per repository, as dashboards without forgelens do).
    const rest = /^\/repos\/([^/]+)\/([^/?]+)$/.exec(req.url);
    if (req.method === "GET" && rest) {
      stats.rest++;
      await sleep((Number(faults.latencyMs) || 0) + (Number(faults.restMs) || 0));
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
    const cred = graphqlAuth(req.headers.authorization);
    // Installation tokens and App JWTs never reach the log (other tokens are logged as before).
    const authorization = cred.auth === "token" || cred.auth === "none"
      ? req.headers.authorization ?? null
      : req.headers.authorization.replace(/\S+\s*$/, (v) => (v.startsWith("ghs_") ? "ghs_[redacted]" : "[redacted-jwt]"));
    const entry = { userAgent: req.headers["user-agent"], authorization, auth: cred.auth, at: Date.now() };
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
    if (cred.error === "anonymous") {
      entry.authError = cred.error;
      return answer(res, 401, {
        message: "This endpoint requires you to be authenticated.",
        documentation_url: "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql",
      });
    }
    if (cred.error) {
      stats.badCredentials++;
      entry.authError = cred.error;
      return answer(res, 401, { message: "Bad credentials", documentation_url: "https://docs.github.com/graphql" });
    }
    // A budget resets at its resetAt; until then a spent one is refused (HTTP 200, as GitHub's
    // GraphQL API does), with `x-ratelimit-remaining: 0`, and the refusal costs nothing.
    const budget = cred.rate;
    if (Date.now() >= Date.parse(budget.resetAt)) {
      budget.remaining = budget.limit;
      budget.resetAt = rfc3339(Date.now() + 3600_000);
    }
    if (budget.remaining <= 0) {
      stats.rateLimited++;
      entry.rateLimited = true;
      return answer(res, 200, {
        errors: [{ type: "RATE_LIMITED", message: "API rate limit exceeded for user ID 1." }],
      }, rateHeaders(budget, "graphql"));
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
    const ctx = { entry, pages: 0, failure: null, scope: cred.scope, rate: cred.rate };
    if (!isBatch) stats.peakOwnerInFlight = Math.max(stats.peakOwnerInFlight, ++stats.ownerInFlight);
    let result;
    try {
      result = await execute({ schema: schema(), document: doc, rootValue, contextValue: ctx, variableValues: payload.variables });
    } finally {
      if (!isBatch) stats.ownerInFlight--;
    }
    if (ctx.failure != null) {
      stats.ownerPageFaults++;
      const [status, failBody] = failureAnswer(ctx.failure);
      return answer(res, status, failBody);
    }
    stats.ownerPages += ctx.pages;
    budget.remaining = Math.max(0, budget.remaining - 1);
    const body = { data: result.data ?? null };
    if (result.errors?.length) {
      body.errors = result.errors.map((e) => ({
        type: e.originalError?.type,
        path: e.path,
        locations: e.locations,
        message: e.message,
      }));
    }
    answer(res, 200, body, rateHeaders(budget, "graphql"));
  }


  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      thrown.push(e);
      console.error("emulator exception:", e);
      if (!res.headersSent) answer(res, 500, { message: "emulator exception (a bug in the test setup, not GitHub)" });
      else res.destroy();
    });
  });
  await new Promise((resolve) => server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", resolve));
  const { port } = server.address();
  // Building the 6 MB schema takes a moment; do it before the first request is timed.
  schema();
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    /** REST base (the worker's GITHUB_API_URL). */
    origin: `http://127.0.0.1:${port}`,
    port,
    /** App mode state (null without opts.app): id, installations, tokenTtlS, tokens, rates, permissions. */
    app,
    /** Webhooks: hooks, deliveries, and the deliveries API (see "Webhooks" above). */
    hooks,
    stats,
    faults,
    forge,
    rate,
    /** Exceptions the emulator threw while answering (never cleared by `reset()`). */
    thrown,
    reset() {
      Object.assign(stats, freshStats());
      Object.assign(faults, freshFaults());
      failState = new WeakMap();
      hooks.resetFaults();
    },
    async close() {
      await hooks.close();
      await new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); });
    },
  };
}

// `node tests/emulator/server.mjs [port] [--port N] [--page-ms MS] …` runs it on its own (the dev
// command does this; USAGE at the top lists every flag and control route). Standalone, owner pages
// cost what they cost on GitHub: 1000 ms per 100 repositories by default (EMULATOR_PAGE_MS or
// --page-ms; --page-ms 0 turns it off).
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop())) {
  const usage = USAGE;
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
  let appKeyOut = null;
  let hookTimeoutMs = String(DEFAULT_HOOK_TIMEOUT_MS);
  const deliver = { url: null, secret: null, everyMs: "5000", hooks: [] };
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const [flag, inline] = a.startsWith("--") && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (flag === "--page-ms") pageMs = inline ?? args[++i];
    else if (flag === "--port") port = inline ?? args[++i];
    else if (flag === "--app-key-out") {
      appKeyOut = inline ?? args[++i];
      if (!appKeyOut) { console.error(`--app-key-out: expected a directory\n${usage}`); process.exit(2); }
    }
    else if (flag === "--deliver-to") deliver.url = inline ?? args[++i];
    else if (flag === "--deliver-secret") deliver.secret = inline ?? args[++i];
    else if (flag === "--deliver-every") deliver.everyMs = inline ?? args[++i];
    else if (flag === "--deliver-hook") {
      const v = inline ?? args[++i];
      const m = /^(app|organization:[^@\s]+|repository:[^@\s]+)(?:@(\d+))?$/.exec(v ?? "");
      if (!m) { console.error(`--deliver-hook: expected app, organization:<login> or repository:<owner>/<repo>, optionally @<hook id>; got ${v ?? "nothing"}\n${usage}`); process.exit(2); }
      deliver.hooks.push({ target: m[1], id: m[2] == null ? undefined : Number(m[2]) });
    }
    else if (flag === "--hook-timeout-ms") hookTimeoutMs = inline ?? args[++i];
    else if (flag === "--help" || flag === "-h") { console.log(usage); process.exit(0); }
    else if (/^\d+$/.test(a)) port = a;
    else { console.error(`unknown argument ${a}\n${usage}`); process.exit(2); }
  }
  if (deliver.url && !deliver.secret) { console.error(`--deliver-to needs --deliver-secret\n${usage}`); process.exit(2); }
  if (!deliver.url && deliver.hooks.length) { console.error(`--deliver-hook needs --deliver-to (the hook's URL) and --deliver-secret\n${usage}`); process.exit(2); }
  let app;
  if (appKeyOut != null) {
    // App mode: a fresh key pair per run; the worker gets the private key and the id from files.
    const { mkdirSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const key = generateAppKey();
    mkdirSync(appKeyOut, { recursive: true });
    writeFileSync(join(appKeyOut, "app-private-key.pem"), key.privateKeyPkcs1Pem, { mode: 0o600 });
    writeFileSync(join(appKeyOut, "app-id"), `${DEFAULT_APP_ID}\n`);
    app = { id: DEFAULT_APP_ID, publicKeyPem: key.publicKeyPem };
  }
  // --deliver-to: the worker's webhook route gets a hook (the App's in App mode, else octo-org's
  // organization hook, unless --deliver-hook names others), all with --deliver-secret.
  const everyMs = number("--deliver-every", deliver.everyMs);
  if (deliver.url && deliver.hooks.length === 0) deliver.hooks.push({ target: app ? "app" : "organization:octo-org" });
  let emu;
  try {
    emu = await startEmulator({
      port: number("port", port),
      pageMs: number("--page-ms", pageMs),
      app,
      hookTimeoutMs: number("--hook-timeout-ms", hookTimeoutMs),
      hooks: deliver.hooks.map((h) => ({ ...h, url: deliver.url, secret: deliver.secret })),
    });
  } catch (e) {
    if (e.status == null) throw e;
    console.error(`--deliver-hook: ${e.message}\n${usage}`);
    process.exit(2);
  }
  const orgs = [...emu.forge.owners.values()].map((o) => `${o.login} (${o.repos.length})`).join(", ");
  console.log(`GitHub emulator listening on ${emu.url}`);
  console.log(`demo owners: ${orgs}`);
  console.log(`owner listing pages cost ${emu.faults.pageMs} ms per 100 repositories (--page-ms)`);
  if (emu.app) {
    const installed = [...emu.app.installations.keys()].join(", ");
    console.log(`GitHub App mode on: app id ${emu.app.id}, REST base ${emu.origin}, installed on: ${installed}`);
    console.log(`App private key (PKCS#1) and id written to ${appKeyOut}/app-private-key.pem and ${appKeyOut}/app-id`);
  }
  for (const h of emu.hooks.hooks.values()) {
    const list = h.type === "app" ? "/app/hook/deliveries (App JWT)"
      : h.type === "organization" ? `/orgs/${h.org}/hooks/${h.id}/deliveries (any token)`
      : `/repos/${h.owner}/${h.repo}/hooks/${h.id}/deliveries (any token)`;
    console.log(`webhook ${h.id} (${h.target}) delivers to ${h.url}; its deliveries: ${emu.origin}${list}`);
  }
  if (deliver.url) {
    const first = [...emu.hooks.hooks.values()][0];
    console.log(`make its next delivery fail (the worker unreachable): curl -X POST ${emu.origin}/_emulator/hooks/${first.id}/fail-next`);
    if (everyMs > 0) {
      const { sendDeliveries } = await import("./deliveries.mjs");
      sendDeliveries({ forge: emu.forge, emit: emu.hooks.emit, everyMs });
      console.log(`live demo: a signed check_suite delivery for an octo-org repository every ${everyMs} ms to every hook it concerns`);
    } else {
      console.log(`send one: curl -X POST ${emu.origin}/_emulator/hooks/${first.id}/send -d '{"event":"ping","payload":{"zen":"Keep it logically awesome."}}'`);
    }
  }
}
