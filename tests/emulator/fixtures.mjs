// Demo forge data for the GitHub emulator: deterministic, so tests can compute what any view
// must contain. Every generated org mixes public, private and internal repositories, archived
// ones, forks, empty ones (no default branch) and every CI state. Owners: octo-org (250),
// Small-Org (15, hand-made names included), big-org (1,000), octocat (user, 5), empty-org (0),
// huge-org (10,000).

const CI_STATES = ["SUCCESS", "FAILURE", "PENDING", "ERROR", "EXPECTED", null];
const LANGUAGES = ["Rust", "TypeScript", "Go", null, "Python"];

function pad(n) {
  return String(n).padStart(4, "0");
}

/** One repository record, shaped like the fields GitHub's schema exposes. */
export function makeRepo(owner, ownerType, name, i) {
  const visibility = i % 7 === 3 ? "PRIVATE" : i % 11 === 5 ? "INTERNAL" : "PUBLIC";
  const empty = i % 23 === 9;
  const ci = CI_STATES[i % CI_STATES.length];
  const day = String((i % 28) + 1).padStart(2, "0");
  return {
    __typename: "Repository",
    name,
    owner: { __typename: ownerType, login: owner },
    nameWithOwner: `${owner}/${name}`,
    url: `https://github.com/${owner}/${name}`,
    description: i % 4 === 0 ? null : `Demo repository number ${i}`,
    visibility,
    isPrivate: visibility !== "PUBLIC",
    isArchived: i % 10 === 7,
    isDisabled: false,
    isFork: i % 6 === 1,
    pushedAt: empty ? null : `2026-10-${day}T12:00:00Z`,
    updatedAt: `2026-11-${day}T08:30:00Z`,
    primaryLanguage: empty || LANGUAGES[i % LANGUAGES.length] === null ? null : { name: LANGUAGES[i % LANGUAGES.length] },
    defaultBranchRef: empty
      ? null
      : {
          name: i % 5 === 2 ? "master" : "main",
          target: {
            __typename: "Commit",
            oid: (i * 2654435761 >>> 0).toString(16).padStart(8, "0").repeat(5),
            statusCheckRollup: ci === null ? null : { state: ci },
          },
        },
  };
}

export function makeOwner(login, type, count, prefix = "repo") {
  const repos = [];
  for (let i = 0; i < count; i++) repos.push(makeRepo(login, type, `${prefix}-${pad(i)}`, i));
  return { __typename: type, login, repos };
}

/** A fresh copy of the demo forge: owners by lowercased login, plus renamed repositories. */
export function demoForge() {
  const owners = [
    makeOwner("octo-org", "Organization", 250),
    makeOwner("Small-Org", "Organization", 12, "tool"),
    makeOwner("big-org", "Organization", 1000),
    makeOwner("octocat", "User", 5, "project"),
    { __typename: "Organization", login: "empty-org", repos: [] },
    // Too big for one request's budget at real GitHub speeds (100 pages of about a second each):
    // listed by the owner's Durable Object in a checkpointed build, the dashboard shows progress.
    makeOwner("huge-org", "Organization", 10_000),
  ];
  // A few hand-made names, so the dashboard and README show something readable.
  const small = owners[1];
  small.repos.push(makeRepo("Small-Org", "Organization", "Hello-World", 0));
  small.repos.push(makeRepo("Small-Org", "Organization", ".github", 2));
  small.repos.push(makeRepo("Small-Org", "Organization", "secret-plans", 3));
  const map = new Map(owners.map((o) => [o.login.toLowerCase(), o]));
  // GitHub answers an old name with the renamed repository.
  const renames = new Map([["small-org/old-tool", "small-org/tool-0001"]]);
  return { owners: map, renames };
}
