//! Worker configuration: every variable and secret of DESIGN.md, parsed and validated from a lookup
//! function so the same code serves the worker (env bindings) and native tests (a map).

use crate::names::Owner;
pub use crate::secret::Secret;
use crate::secret::{key_from_pem, AppKey};
use std::cell::RefCell;
use std::rc::Rc;

pub const DEFAULT_GRAPHQL_URL: &str = "https://api.github.com/graphql";
pub const DEFAULT_API_URL: &str = "https://api.github.com";
pub const DEFAULT_FRESH_TTL: u64 = 300;
pub const DEFAULT_STALE_TTL: u64 = 86_400;
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 9_000;
/// KV refuses `expirationTtl` below 60 s.
pub const MIN_STALE_TTL: u64 = 60;
pub const MIN_UPSTREAM_TIMEOUT_MS: u64 = 100;
pub const MAX_UPSTREAM_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_MEMORY_TTL_MS: u64 = 2_000;
pub const MAX_MEMORY_TTL_MS: u64 = 10_000;
pub const MIN_READ_TOKEN_SECRET: usize = 32;
pub const DEFAULT_BUDGET_RESERVE: u64 = 20;
pub const MAX_BUDGET_RESERVE: u64 = 90;
/// `BUILD_CONCURRENCY`'s default and ceiling: Workers allow six connections per invocation.
pub const DEFAULT_BUILD_CONCURRENCY: u64 = 4;
pub const MAX_BUILD_CONCURRENCY: u64 = 6;

/// The bindings DESIGN.md fixes, named here only.
pub const CACHE_BINDING: &str = "CACHE";
pub const OWNERS_BINDING: &str = "OWNERS";
pub const LIMITER_BINDING: &str = "UPSTREAM_LIMITER";
/// The optional Workers Analytics Engine dataset: one data point per answered request.
pub const ANALYTICS_BINDING: &str = "ANALYTICS";

/// The variables reported by `/v1/health`, in the order DESIGN.md lists them.
pub const VARIABLES: &[&str] = &[
    CACHE_BINDING,
    OWNERS_BINDING,
    LIMITER_BINDING,
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_API_URL",
    "GITHUB_GRAPHQL_URL",
    "GITHUB_TOKEN",
    "GITHUB_WEBHOOK_SECRET",
    "ADMIN_TOKEN",
    "READ_TOKEN_SECRET",
    "FRESH_TTL_SECONDS",
    "STALE_TTL_SECONDS",
    "UPSTREAM_TIMEOUT_MS",
    "MEMORY_TTL_MS",
    "PINNED_ORGS",
    "ALLOWED_OWNERS",
    "GITHUB_BUDGET_RESERVE",
    "ALLOWED_ORIGINS",
    "BUILD_CONCURRENCY",
    "PRIVATE_REPOS_ANONYMOUS",
    "DELIVERY_RECOVERY",
    ANALYTICS_BINDING,
];

/// What anonymous callers see of private and internal repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivatePolicy {
    Hide,
    Redact,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    Any,
    List(Vec<String>),
}

impl Origins {
    /// The value for `Access-Control-Allow-Origin`, or `None` when this origin gets no CORS headers.
    pub fn allow(&self, origin: Option<&str>) -> Option<String> {
        match (self, origin) {
            (Origins::Any, _) => Some("*".to_string()),
            (Origins::List(list), Some(o)) if list.iter().any(|a| a == o) => Some(o.to_string()),
            _ => None,
        }
    }
}

/// The GitHub App the worker authenticates as (`GITHUB_APP_ID` + `GITHUB_APP_PRIVATE_KEY`).
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub id: u64,
    /// PKCS#8 DER, decoded once per isolate (see `app_key`).
    pub key: Rc<AppKey>,
    /// `GITHUB_API_URL`: the REST base for installation lookups and tokens.
    pub api_url: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub graphql_url: String,
    /// `GITHUB_API_URL`: the REST base (App calls, webhook deliveries).
    pub api_url: String,
    /// With an App, each owner is read with its installation's token.
    pub app: Option<AppConfig>,
    pub github_token: Option<Secret>,
    pub webhook_secret: Option<Secret>,
    pub admin_token: Option<Secret>,
    pub read_token_secret: Option<Secret>,
    pub fresh_ttl: u64,
    pub stale_ttl: u64,
    pub upstream_timeout_ms: u64,
    /// Lifetime of the in-isolate memory tier; 0 disables it.
    pub memory_ttl_ms: u64,
    pub pinned_orgs: Vec<Owner>,
    /// `ALLOWED_OWNERS`: the owners served; `None` serves any.
    pub allowed_owners: Option<Vec<Owner>>,
    /// `GITHUB_BUDGET_RESERVE`: percent of a credential's rate limit kept for essential work.
    pub budget_reserve: u64,
    /// `BUILD_CONCURRENCY`: requests one owner build keeps in flight (1 = sequential paging).
    pub build_concurrency: u32,
    pub allowed_origins: Origins,
    pub private_policy: PrivatePolicy,
    /// `DELIVERY_RECOVERY`: the cron has deliveries GitHub failed to make sent again.
    pub delivery_recovery: bool,
}

/// A variable that is set but unusable. Only the name is kept: values may be secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: &'static str,
}

impl Config {
    /// Reads every variable through `lookup`; an empty string counts as unset.
    ///
    /// # Errors
    /// The first variable (in DESIGN.md order) that is out of range or malformed.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let secret = |name: &str| get(name).map(Secret::new);

        let graphql_url = match get("GITHUB_GRAPHQL_URL") {
            None => DEFAULT_GRAPHQL_URL.to_string(),
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => url,
            Some(_) => return Err(invalid("GITHUB_GRAPHQL_URL", "must be an http(s) URL")),
        };
        let api_url = match get("GITHUB_API_URL") {
            None => DEFAULT_API_URL.to_string(),
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => url,
            Some(_) => return Err(invalid("GITHUB_API_URL", "must be an http(s) URL")),
        };
        let app = match (get("GITHUB_APP_ID"), get("GITHUB_APP_PRIVATE_KEY")) {
            (None, None) => None,
            (Some(id), Some(pem)) => {
                let id = id
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| invalid("GITHUB_APP_ID", "must be a whole number"))?;
                let key =
                    app_key(&pem).map_err(|reason| invalid("GITHUB_APP_PRIVATE_KEY", reason))?;
                Some(AppConfig {
                    id,
                    key,
                    api_url: api_url.clone(),
                })
            }
            (Some(_), None) => {
                return Err(invalid(
                    "GITHUB_APP_PRIVATE_KEY",
                    "must be set together with GITHUB_APP_ID",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "GITHUB_APP_PRIVATE_KEY",
                    "needs GITHUB_APP_ID to be set too",
                ))
            }
        };
        if let Some(token) = get("GITHUB_TOKEN") {
            // The token goes into a header; a newline would let it inject another one.
            if token.chars().any(|c| c.is_control() || c == ' ') {
                return Err(invalid(
                    "GITHUB_TOKEN",
                    "must not contain spaces or control characters",
                ));
            }
        }
        let read_token_secret = secret("READ_TOKEN_SECRET");
        if read_token_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < MIN_READ_TOKEN_SECRET)
        {
            return Err(invalid("READ_TOKEN_SECRET", "must be at least 32 bytes"));
        }
        let fresh_ttl = number(&get, "FRESH_TTL_SECONDS", DEFAULT_FRESH_TTL)?;
        let stale_ttl = number(&get, "STALE_TTL_SECONDS", DEFAULT_STALE_TTL)?;
        if stale_ttl < MIN_STALE_TTL {
            return Err(invalid("STALE_TTL_SECONDS", "must be at least 60"));
        }
        if fresh_ttl > stale_ttl {
            return Err(invalid(
                "FRESH_TTL_SECONDS",
                "must not exceed STALE_TTL_SECONDS",
            ));
        }
        let upstream_timeout_ms = number(&get, "UPSTREAM_TIMEOUT_MS", DEFAULT_UPSTREAM_TIMEOUT_MS)?;
        if !(MIN_UPSTREAM_TIMEOUT_MS..=MAX_UPSTREAM_TIMEOUT_MS).contains(&upstream_timeout_ms) {
            return Err(invalid(
                "UPSTREAM_TIMEOUT_MS",
                "must be between 100 and 30000",
            ));
        }
        let memory_ttl_ms = number(&get, "MEMORY_TTL_MS", DEFAULT_MEMORY_TTL_MS)?;
        if memory_ttl_ms > MAX_MEMORY_TTL_MS {
            return Err(invalid("MEMORY_TTL_MS", "must be between 0 and 10000"));
        }
        let owners = |name: &'static str, list: &str| {
            list.split(',')
                .map(|o| {
                    Owner::parse(o.trim()).map_err(|_| invalid(name, "holds an invalid owner"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let pinned_orgs = match get("PINNED_ORGS") {
            None => Vec::new(),
            Some(list) => owners("PINNED_ORGS", &list)?,
        };
        let allowed_owners = match get("ALLOWED_OWNERS") {
            None => None,
            Some(list) if list.trim() == "*" => None,
            Some(list) => Some(owners("ALLOWED_OWNERS", &list)?),
        };
        let budget_reserve = number(&get, "GITHUB_BUDGET_RESERVE", DEFAULT_BUDGET_RESERVE)?;
        if budget_reserve > MAX_BUDGET_RESERVE {
            return Err(invalid("GITHUB_BUDGET_RESERVE", "must be between 0 and 90"));
        }
        let allowed_origins = match get("ALLOWED_ORIGINS") {
            None => Origins::Any,
            Some(list) => {
                let items: Vec<String> = list.split(',').map(|o| o.trim().to_string()).collect();
                if items.iter().any(|o| o == "*") {
                    Origins::Any
                } else if items.iter().any(String::is_empty) {
                    return Err(invalid("ALLOWED_ORIGINS", "holds an empty origin"));
                } else {
                    Origins::List(items)
                }
            }
        };
        let build_concurrency = number(&get, "BUILD_CONCURRENCY", DEFAULT_BUILD_CONCURRENCY)?;
        if !(1..=MAX_BUILD_CONCURRENCY).contains(&build_concurrency) {
            return Err(invalid("BUILD_CONCURRENCY", "must be between 1 and 6"));
        }
        let private_policy = match get("PRIVATE_REPOS_ANONYMOUS").as_deref() {
            None | Some("hide") => PrivatePolicy::Hide,
            Some("redact") => PrivatePolicy::Redact,
            Some(_) => return Err(invalid("PRIVATE_REPOS_ANONYMOUS", "must be hide or redact")),
        };
        let delivery_recovery = match get("DELIVERY_RECOVERY").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(_) => return Err(invalid("DELIVERY_RECOVERY", "must be on or off")),
        };
        Ok(Config {
            graphql_url,
            api_url,
            app,
            github_token: secret("GITHUB_TOKEN"),
            webhook_secret: secret("GITHUB_WEBHOOK_SECRET"),
            admin_token: secret("ADMIN_TOKEN"),
            read_token_secret,
            fresh_ttl,
            stale_ttl,
            upstream_timeout_ms,
            memory_ttl_ms,
            pinned_orgs,
            allowed_owners,
            budget_reserve,
            build_concurrency: u32::try_from(build_concurrency).unwrap_or(1),
            allowed_origins,
            private_policy,
            delivery_recovery,
        })
    }

    pub fn is_pinned(&self, owner: &Owner) -> bool {
        self.pinned_orgs.iter().any(|p| p.key() == owner.key())
    }

    /// Whether this deployment serves `owner` (`ALLOWED_OWNERS`).
    pub fn serves(&self, owner: &Owner) -> bool {
        self.allowed_owners
            .as_ref()
            .is_none_or(|list| list.iter().any(|a| a.key() == owner.key()))
    }
}

/// A PEM text and what decoding it gave.
type DecodedKey = (String, Result<Rc<AppKey>, &'static str>);

thread_local! {
    /// The last PEM read and what it gave: configuration is read on every request, the key is
    /// decoded once per isolate.
    static LAST_KEY: RefCell<Option<DecodedKey>> = const { RefCell::new(None) };
}

/// `key_from_pem`, remembered for the PEM text last seen.
fn app_key(pem: &str) -> Result<Rc<AppKey>, &'static str> {
    LAST_KEY.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((text, key)) = last.as_ref() {
            if text == pem {
                return key.clone();
            }
        }
        let key = key_from_pem(pem).map(Rc::new);
        *last = Some((pem.to_string(), key.clone()));
        key
    })
}

fn invalid(name: &'static str, reason: &'static str) -> ConfigError {
    ConfigError { name, reason }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| invalid(name, "must be a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.graphql_url, DEFAULT_GRAPHQL_URL);
        assert_eq!(
            (c.fresh_ttl, c.stale_ttl, c.upstream_timeout_ms),
            (300, 86_400, 9_000)
        );
        assert_eq!(c.allowed_origins, Origins::Any);
        assert_eq!(c.private_policy, PrivatePolicy::Hide);
        assert!(c.github_token.is_none() && c.pinned_orgs.is_empty());
    }

    #[test]
    fn empty_counts_as_unset() {
        let c = parse(&[
            ("FRESH_TTL_SECONDS", ""),
            ("GITHUB_TOKEN", ""),
            ("PINNED_ORGS", ""),
        ])
        .unwrap();
        assert_eq!(c.fresh_ttl, 300);
        assert!(c.github_token.is_none() && c.pinned_orgs.is_empty());
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let short = "s".repeat(31);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("FRESH_TTL_SECONDS", "-1")], "FRESH_TTL_SECONDS"),
            (&[("FRESH_TTL_SECONDS", "5m")], "FRESH_TTL_SECONDS"),
            (
                &[("FRESH_TTL_SECONDS", "100"), ("STALE_TTL_SECONDS", "60")],
                "FRESH_TTL_SECONDS",
            ),
            (&[("STALE_TTL_SECONDS", "59")], "STALE_TTL_SECONDS"),
            (&[("UPSTREAM_TIMEOUT_MS", "99")], "UPSTREAM_TIMEOUT_MS"),
            (&[("UPSTREAM_TIMEOUT_MS", "30001")], "UPSTREAM_TIMEOUT_MS"),
            (&[("MEMORY_TTL_MS", "10001")], "MEMORY_TTL_MS"),
            (&[("MEMORY_TTL_MS", "-1")], "MEMORY_TTL_MS"),
            (&[("PINNED_ORGS", "good,-bad")], "PINNED_ORGS"),
            (&[("PINNED_ORGS", "a,,b")], "PINNED_ORGS"),
            (&[("ALLOWED_OWNERS", "acme,bad owner")], "ALLOWED_OWNERS"),
            (&[("ALLOWED_OWNERS", "acme,*")], "ALLOWED_OWNERS"),
            (&[("ALLOWED_OWNERS", ",")], "ALLOWED_OWNERS"),
            (&[("GITHUB_BUDGET_RESERVE", "91")], "GITHUB_BUDGET_RESERVE"),
            (&[("BUILD_CONCURRENCY", "0")], "BUILD_CONCURRENCY"),
            (&[("BUILD_CONCURRENCY", "7")], "BUILD_CONCURRENCY"),
            (&[("BUILD_CONCURRENCY", "two")], "BUILD_CONCURRENCY"),
            (&[("DELIVERY_RECOVERY", "yes")], "DELIVERY_RECOVERY"),
            (&[("DELIVERY_RECOVERY", "ON")], "DELIVERY_RECOVERY"),
            (&[("GITHUB_BUDGET_RESERVE", "20%")], "GITHUB_BUDGET_RESERVE"),
            (
                &[("PRIVATE_REPOS_ANONYMOUS", "show")],
                "PRIVATE_REPOS_ANONYMOUS",
            ),
            (
                &[("READ_TOKEN_SECRET", short.as_str())],
                "READ_TOKEN_SECRET",
            ),
            (&[("GITHUB_GRAPHQL_URL", "ftp://x")], "GITHUB_GRAPHQL_URL"),
            (&[("GITHUB_API_URL", "api.github.com")], "GITHUB_API_URL"),
            (&[("GITHUB_APP_ID", "12345")], "GITHUB_APP_PRIVATE_KEY"),
            (
                &[("GITHUB_APP_PRIVATE_KEY", TEST_PKCS1)],
                "GITHUB_APP_PRIVATE_KEY",
            ),
            (
                &[
                    ("GITHUB_APP_ID", "12345"),
                    ("GITHUB_APP_PRIVATE_KEY", "garbage"),
                ],
                "GITHUB_APP_PRIVATE_KEY",
            ),
            (
                &[
                    ("GITHUB_APP_ID", "app"),
                    ("GITHUB_APP_PRIVATE_KEY", TEST_PKCS1),
                ],
                "GITHUB_APP_ID",
            ),
            (&[("GITHUB_TOKEN", "abc\r\nX-Evil: 1")], "GITHUB_TOKEN"),
            (
                &[("ALLOWED_ORIGINS", "https://a.example,")],
                "ALLOWED_ORIGINS",
            ),
        ];
        for (vars, name) in cases {
            assert_eq!(parse(vars).unwrap_err().name, *name, "{vars:?}");
        }
    }

    #[test]
    fn accepted_values() {
        let c = parse(&[
            ("FRESH_TTL_SECONDS", "0"),
            ("STALE_TTL_SECONDS", "60"),
            ("UPSTREAM_TIMEOUT_MS", "30000"),
            ("PINNED_ORGS", "octo-org, Acme"),
            ("ALLOWED_ORIGINS", "https://a.example, https://b.example"),
            ("PRIVATE_REPOS_ANONYMOUS", "redact"),
            ("READ_TOKEN_SECRET", &"k".repeat(32)),
        ])
        .unwrap();
        assert_eq!(
            (c.fresh_ttl, c.stale_ttl, c.upstream_timeout_ms),
            (0, 60, 30_000)
        );
        assert_eq!(
            c.pinned_orgs.iter().map(Owner::as_str).collect::<Vec<_>>(),
            ["octo-org", "Acme"]
        );
        assert!(c.is_pinned(&Owner::parse("acme").unwrap()));
        assert_eq!(c.private_policy, PrivatePolicy::Redact);
        assert_eq!(
            c.allowed_origins
                .allow(Some("https://b.example"))
                .as_deref(),
            Some("https://b.example")
        );
        assert_eq!(c.allowed_origins.allow(Some("https://evil.example")), None);
        assert_eq!(c.allowed_origins.allow(None), None);
    }

    #[test]
    fn allowed_owners_and_the_budget_reserve() {
        let owner = |o: &str| Owner::parse(o).unwrap();
        let any = parse(&[]).unwrap();
        assert!(any.serves(&owner("anyone")));
        assert_eq!(any.budget_reserve, DEFAULT_BUDGET_RESERVE);
        assert_eq!(any.build_concurrency, 4);
        let one = parse(&[("BUILD_CONCURRENCY", "1")]).unwrap();
        assert_eq!(one.build_concurrency, 1);
        assert_eq!(
            parse(&[("BUILD_CONCURRENCY", "6")])
                .unwrap()
                .build_concurrency,
            6
        );
        let star = parse(&[("ALLOWED_OWNERS", " * ")]).unwrap();
        assert!(star.serves(&owner("anyone")));
        let c = parse(&[
            ("ALLOWED_OWNERS", "octo-org, Acme"),
            ("GITHUB_BUDGET_RESERVE", "0"),
        ])
        .unwrap();
        assert!(c.serves(&owner("ACME")) && c.serves(&owner("octo-org")));
        assert!(!c.serves(&owner("other")));
        assert_eq!(c.budget_reserve, 0);
        assert_eq!(
            parse(&[("GITHUB_BUDGET_RESERVE", "90")])
                .unwrap()
                .budget_reserve,
            90
        );
    }

    const TEST_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOQIBAAJBAKx3odrqgWOh0f+ffg8pPwmLKURkx4clr5aBGeKVjRcERSzsAsuq\nafZFaMsHKJhJwsYLWOwiBzNJSe/CkhPW76ECAwEAAQJAcywMzTlvII6uwwrKTuuX\nahMhgsfeKtUy1cnu9E40gxpBKSPmIJPoUSPup1eMydPlBw1nvECuy5ccyxNxmm3G\nVQIhANhaQF8HjTnf30T2oX7pdscwfRw7ecSp7wtDU88hKvSnAiEAzBKXtYunuefN\nD8+0ZrFvUjVn9y1yR/mTAWBZC2NP2ncCIAUu1E/yfF2gkVazmdbSfPf0n2qnuhkO\nAR4B9OYHY2INAiAuDpgswgsluvod8mutragJLsJ7F8euFNanvd364vwXuwIgbj7X\n1ECUOt4RHuiA1I7WGK5xeH7D8s1OxL2Tnf/dHSs=\n-----END RSA PRIVATE KEY-----\n";

    #[test]
    fn app_settings() {
        let c = parse(&[
            ("GITHUB_APP_ID", "12345"),
            ("GITHUB_APP_PRIVATE_KEY", TEST_PKCS1),
        ])
        .unwrap();
        let app = c.app.unwrap();
        assert_eq!((app.id, app.api_url.as_str()), (12345, DEFAULT_API_URL));
        // Decoded once: the second read shares the first one's key.
        let again = parse(&[
            ("GITHUB_APP_ID", "12345"),
            ("GITHUB_APP_PRIVATE_KEY", TEST_PKCS1),
            ("GITHUB_API_URL", "http://127.0.0.1:1"),
        ])
        .unwrap()
        .app
        .unwrap();
        assert!(Rc::ptr_eq(&app.key, &again.key));
        assert_eq!(again.api_url, "http://127.0.0.1:1");
        assert!(!format!("{again:?}").contains("MII"));
        assert!(parse(&[]).unwrap().app.is_none());
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let c = parse(&[("GITHUB_TOKEN", "ghp_supersecret")]).unwrap();
        assert!(!format!("{c:?}").contains("supersecret"));
    }
}
