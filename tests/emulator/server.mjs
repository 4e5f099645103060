// A local GitHub GraphQL emulator. Every query is parsed and validated against GitHub's published
// schema (@octokit/graphql-schema) before it is executed against demo data, so a query the real
// API would reject fails here too. It counts requests and records their variables for tests, and
// can inject faults (status codes, latency, garbage bodies) on request.
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

function ownerValue(owner) {
  return {
    __typename: owner.__typename,
    login: owner.login,
    repositories: ({ first, after, ownerAffiliations, orderBy }) => {
      if (first == null || first < 1 || first > 100) {
        throw new GraphQLError("Requesting 101 records on the `repositories` connection exceeds the `first` limit of 100 records.");
      }
      let repos = owner.repos;
      if (ownerAffiliations && !ownerAffiliations.includes("OWNER")) repos = [];
      if (orderBy?.field === "NAME") {
        repos = [...repos].sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
        if (orderBy.direction === "DESC") repos.reverse();
      }
      const start = after ? decodeCursor(after) + 1 : 0;
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
 * Starts the emulator. Options: port (0 = any), host, latencyMs, forge (demo data).
 * Returns { url, stats, faults, forge, reset(), close() }.
 */
export async function startEmulator(opts = {}) {
  const forge = opts.forge ?? demoForge();
  const stats = { requests: 0, owner: 0, batch: 0, invalid: 0, rest: 0, log: [] };
  const faults = { status: null, body: null, latencyMs: opts.latencyMs ?? 0, headers: {} };
  const rate = { remaining: 5000, resetAt: new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, "Z") };

  function findRepo(owner, name) {
    let key = `${owner}/${name}`.toLowerCase();
    key = forge.renames.get(key) ?? key;
    const [o, n] = key.split("/");
    return forge.owners.get(o)?.repos.find((r) => r.name.toLowerCase() === n) ?? null;
  }

  const rootValue = {
    rateLimit: () => ({ cost: 1, remaining: rate.remaining, resetAt: rate.resetAt, limit: 5000, used: 5000 - rate.remaining, nodeCount: 100 }),
    repositoryOwner: ({ login }) => {
      const o = forge.owners.get(login.toLowerCase());
      return o ? ownerValue(o) : null;
    },
    repository: ({ owner, name }) => {
      const r = findRepo(owner, name);
      if (!r) throw new NotFound(`Could not resolve to a Repository with the name '${owner}/${name}'.`);
      return r;
    },
  };

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
    const entry = { userAgent: req.headers["user-agent"], authorization: req.headers.authorization ?? null };
    stats.log.push(entry);
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
    const result = await execute({ schema: schema(), document: doc, rootValue, variableValues: payload.variables });
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
      Object.assign(stats, { requests: 0, owner: 0, batch: 0, invalid: 0, rest: 0, log: [] });
      Object.assign(faults, { status: null, body: null, latencyMs: opts.latencyMs ?? 0, headers: {} });
    },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

// `node tests/emulator/server.mjs [port]` runs it on its own (the dev command does this).
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop())) {
  const port = Number(process.argv[2] ?? process.env.EMULATOR_PORT ?? 8788);
  const emu = await startEmulator({ port });
  const orgs = [...emu.forge.owners.values()].map((o) => `${o.login} (${o.repos.length})`).join(", ");
  console.log(`GitHub emulator listening on ${emu.url}`);
  console.log(`demo owners: ${orgs}`);
}
