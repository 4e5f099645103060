//! Validated owner and repository names. Every name that reaches the cache or GitHub passes through
//! here first, so the rest of the code can hold `Owner` / `RepoName` and never re-check strings.

use std::fmt;

/// Why a name was refused; the message is shown to the caller as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

/// An owner login (organization or user): `^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner(String);

/// A repository name: `^[A-Za-z0-9._-]{1,100}$`, and not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

/// `owner/repo`, both halves validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FullName {
    pub owner: Owner,
    pub repo: RepoName,
}

/// Longest owner login GitHub accepts.
pub const OWNER_MAX_LEN: usize = 39;
/// Longest repository name GitHub accepts.
pub const REPO_MAX_LEN: usize = 100;

impl Owner {
    /// # Errors
    /// Returns a `NameError` naming the offending input when it is not a valid owner login.
    pub fn parse(s: &str) -> Result<Owner, NameError> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
        if first_ok && rest_ok && s.len() <= OWNER_MAX_LEN {
            Ok(Owner(s.to_string()))
        } else {
            Err(NameError(format!(
                "{} is not a valid owner name (letters, digits and '-', 1-39 characters, not starting with '-')",
                quote(s)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// GitHub logins are case-insensitive; caches and comparisons use this form.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl RepoName {
    /// # Errors
    /// Returns a `NameError` when `s` is not a valid repository name.
    pub fn parse(s: &str) -> Result<RepoName, NameError> {
        let chars_ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if chars_ok && !s.is_empty() && s.len() <= REPO_MAX_LEN && s != "." && s != ".." {
            Ok(RepoName(s.to_string()))
        } else {
            Err(NameError(format!(
                "{} is not a valid repository name (letters, digits, '.', '_' and '-', 1-100 characters, not '.' or '..')",
                quote(s)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl FullName {
    pub fn new(owner: Owner, repo: RepoName) -> FullName {
        FullName { owner, repo }
    }

    /// Parses `owner/repo` as given in `names=`.
    ///
    /// # Errors
    /// Returns a `NameError` when there is not exactly one `/` or either half is invalid.
    pub fn parse(s: &str) -> Result<FullName, NameError> {
        let Some((owner, repo)) = s.split_once('/') else {
            return Err(NameError(format!(
                "{} is not of the form owner/repo",
                quote(s)
            )));
        };
        if repo.contains('/') {
            return Err(NameError(format!(
                "{} is not of the form owner/repo",
                quote(s)
            )));
        }
        Ok(FullName::new(Owner::parse(owner)?, RepoName::parse(repo)?))
    }

    /// Lowercased `owner/repo`: two spellings of one repository share it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.owner.key(), self.repo.key())
    }
}

impl fmt::Display for FullName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner.0, self.repo.0)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Quotes caller input for an error message, cut short so a huge name cannot bloat the answer.
fn quote(s: &str) -> String {
    const MAX: usize = 120;
    let short: String = s.chars().take(MAX).collect();
    let ellipsis = if s.chars().count() > MAX { "…" } else { "" };
    format!("{:?}", format!("{short}{ellipsis}"))
}

/// Case-insensitive name order (GitHub's), without allocating lowercase copies.
pub fn cmp_names(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        let long_ok = "a".repeat(39);
        let too_long = "a".repeat(40);
        let cases: &[(&str, bool)] = &[
            ("octo-org", true),
            ("A", true),
            ("0day", true),
            ("a-b-c", true),
            (&long_ok, true),
            (&too_long, false),
            ("", false),
            ("-lead", false),
            ("has space", false),
            ("dot.ted", false),
            ("under_score", false),
            ("%2F", false),
            ("ünïcode", false),
            ("a/b", false),
            ("a\0b", false),
            ("..", false),
        ];
        for (input, ok) in cases {
            assert_eq!(Owner::parse(input).is_ok(), *ok, "owner {input:?}");
        }
    }

    #[test]
    fn repos() {
        let long_ok = "r".repeat(100);
        let too_long = "r".repeat(101);
        let cases: &[(&str, bool)] = &[
            ("hello-world", true),
            (".github", true),
            ("a.b_c-d", true),
            ("...", true),
            (&long_ok, true),
            (&too_long, false),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("a%2Fb", false),
            ("a b", false),
            ("<script>", false),
            ("a\nb", false),
        ];
        for (input, ok) in cases {
            assert_eq!(RepoName::parse(input).is_ok(), *ok, "repo {input:?}");
        }
    }

    #[test]
    fn full_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Octo/Hello", Some("octo/hello")),
            ("o/.github", Some("o/.github")),
            ("o", None),
            ("o/", None),
            ("/r", None),
            ("o/r/x", None),
            ("o//r", None),
            ("-o/r", None),
        ];
        for (input, key) in cases {
            assert_eq!(
                FullName::parse(input).ok().map(|f| f.key()),
                key.map(String::from),
                "{input:?}"
            );
        }
    }

    #[test]
    fn error_message_quotes_and_truncates() {
        let err = Owner::parse(&"x".repeat(500)).unwrap_err();
        assert!(err.0.len() < 300, "message stays short: {}", err.0);
        assert!(err.0.contains('…'));
        let err = RepoName::parse("a\"b").unwrap_err();
        assert!(err.0.starts_with("\"a\\\"b\""), "{}", err.0);
    }
}
