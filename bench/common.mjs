// What the benchmark scripts share: the Miniflare options of a built worker, and the HTTP
// client every timed request goes through.
import http from "node:http";
import { execFileSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { resolve } from "node:path";

/// Miniflare options for the worker built into `dir` (index.js + index_bg.wasm), with `bindings`.
/// The emulator answers GraphQL without a token 401, as GitHub does: the worker gets one.
export const workerOptions = (dir, bindings) => ({
  modules: true,
  scriptPath: `${dir}/index.js`,
  modulesRoot: dir,
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  kvNamespaces: ["CACHE"],
  durableObjects: { OWNERS: { className: "OwnerDirectory", useSQLite: true } },
  bindings: { GITHUB_TOKEN: "ghp_forgelens_bench_token", ...bindings },
  host: "127.0.0.1",
  port: 0,
});

// Node's http client on kept-alive connections, not node's `fetch`: fetch costs ~2 ms per
// request on this machine by itself, and it asks for gzip, which makes the runtime compress every
// answer. A browser on a real network pays neither here: Cloudflare compresses at the edge.
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

/// One request; resolves to `{ status, headers, text }` with node's lowercase header object.
/// A kept-alive socket the server closed just as it was reused fails with ECONNRESET before
/// anything was sent; such a request is sent once more on a fresh socket (node's documented
/// pattern, `req.reusedSocket`). Any other failure rejects.
export const request = (url, method = "GET", headers = {}, retried = false) => new Promise((resolve, reject) => {
  const req = http.request(url, { agent, method, headers }, (res) => {
    const chunks = [];
    res.on("data", (c) => chunks.push(c));
    res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
    res.on("error", reject);
  });
  req.on("error", (e) => {
    if (!retried && req.reusedSocket && e.code === "ECONNRESET") resolve(request(url, method, headers, true));
    else reject(e);
  });
  req.end();
});

/// Gzipped size of `bytes` as `scripts/build.sh` measures it (`gzip -9`), so the benchmark, the
/// build's budget check and the README quote one number; node's zlib (about 1 % larger on the
/// wasm) only where there is no gzip.
export function gzipSize(bytes) {
  try {
    return execFileSync("gzip", ["-9", "-c"], { input: bytes, maxBuffer: 64 << 20 }).length;
  } catch {
    return gzipSync(bytes, { level: 9 }).length;
  }
}

/// The command line of the scripts that compare builds: `--name value` options, and the build
/// directories (index.js + index_bg.wasm) as absolute paths.
export function buildArgs(args) {
  const opts = {};
  const dirs = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith("--")) opts[args[i].slice(2)] = args[++i];
    else dirs.push(resolve(args[i]));
  }
  return { opts, dirs };
}

/// Runs one bench script on its own (`node bench/live.mjs --page-ms 100`, …) against the built
/// worker: `numbers` maps each option of `bench` to its flag and default; prints the result as
/// JSON and as its BENCHMARKS.md section (`render`).
export async function runAlone(bench, render, numbers) {
  const arg = (flag, dflt) => {
    const i = process.argv.indexOf(`--${flag}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const root = new URL("..", import.meta.url).pathname;
  const workerOpts = (bindings, graphqlUrl) => workerOptions(`${root}build`, { GITHUB_GRAPHQL_URL: graphqlUrl, ...bindings });
  const opts = Object.fromEntries(Object.entries(numbers).map(([key, [flag, dflt]]) => [key, arg(flag, dflt)]));
  const result = await bench({ workerOpts, ...opts, log: (m) => console.error(m) });
  console.log(JSON.stringify(result, null, 2));
  console.log(render(result).join("\n"));
}
