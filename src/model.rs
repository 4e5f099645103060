//! The forge-neutral repository model. Forge modules produce it, the cache stores it, views project
//! it. Nothing GitHub-specific lives here, so a second forge only has to produce these types.
//!
//! A `Repo` keeps its ten text fields in one allocation (a listing of 10,000 records is 10,000
//! allocations, not 100,000): build one from borrowed `RepoFields`, read it with the accessors.
//! Its stored JSON form is `RepoFields`' serde form (the tests hold the two together); the crate
//! writes and reads it by hand with `json`, which is faster and smaller in the wasm.

use crate::json::{self, required, Keys, Reader, Seen};
use serde::Serialize;
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Internal => "internal",
        }
    }

    fn read_json(r: &mut Reader<'_>) -> json::Result<Visibility> {
        match &*r.str()? {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            "internal" => Ok(Visibility::Internal),
            _ => Err(r.error()),
        }
    }
}

/// Combined CI state of the default branch head commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CiState {
    Success,
    Failure,
    Pending,
    Error,
    Expected,
}

impl CiState {
    pub fn as_str(self) -> &'static str {
        match self {
            CiState::Success => "success",
            CiState::Failure => "failure",
            CiState::Pending => "pending",
            CiState::Error => "error",
            CiState::Expected => "expected",
        }
    }

    fn read_json(r: &mut Reader<'_>) -> json::Result<CiState> {
        match &*r.str()? {
            "success" => Ok(CiState::Success),
            "failure" => Ok(CiState::Failure),
            "pending" => Ok(CiState::Pending),
            "error" => Ok(CiState::Error),
            "expected" => Ok(CiState::Expected),
            _ => Err(r.error()),
        }
    }
}

/// The default branch head's CI: its state (`None` when no check reported one) and commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ci<'a> {
    pub state: Option<CiState>,
    pub sha: &'a str,
}

impl Ci<'_> {
    /// Appends `{"state":…,"sha":…}`, or `null` for no CI.
    pub fn write_opt_json(ci: Option<Ci<'_>>, out: &mut String) {
        let Some(ci) = ci else {
            out.push_str("null");
            return;
        };
        out.push_str("{\"state\":");
        json::write_opt_str(out, ci.state.map(CiState::as_str));
        out.push_str(",\"sha\":");
        json::write_str(out, ci.sha);
        out.push('}');
    }
}

/// A repository's fields, borrowed: what `Repo::new` copies and `Repo::fields` lends back. Its
/// serde form (field order included) is the stored form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RepoFields<'a> {
    pub name: &'a str,
    pub owner: &'a str,
    pub full_name: &'a str,
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub visibility: Visibility,
    pub archived: bool,
    pub disabled: bool,
    pub fork: bool,
    pub default_branch: Option<&'a str>,
    pub pushed_at: Option<&'a str>,
    pub updated_at: Option<&'a str>,
    pub language: Option<&'a str>,
    pub ci: Option<Ci<'a>>,
}

/// The text fields of a `Repo`, in the order its `text` holds them.
#[derive(Clone, Copy)]
enum Text {
    Name,
    Owner,
    FullName,
    Url,
    Description,
    DefaultBranch,
    PushedAt,
    UpdatedAt,
    Language,
    Sha,
}

const TEXTS: usize = 10;

/// One repository as the cache stores it: every field of the allow-list, private ones included.
/// Visibility rules are applied when a view is made, never here.
#[derive(Clone, PartialEq, Eq)]
pub struct Repo {
    /// The text fields one after another, in `Text` order.
    text: Box<str>,
    /// Where each text field ends in `text` (it starts where the one before ends).
    ends: [u32; TEXTS],
    /// Which optional text fields are present, one bit per `Text`; absent ones are empty.
    present: u16,
    pub visibility: Visibility,
    pub archived: bool,
    pub disabled: bool,
    pub fork: bool,
    /// The CI state; CI is present when the sha is.
    ci_state: Option<CiState>,
}

impl Repo {
    pub fn new(f: RepoFields<'_>) -> Repo {
        let texts: [Option<&str>; TEXTS] = [
            Some(f.name),
            Some(f.owner),
            Some(f.full_name),
            Some(f.url),
            f.description,
            f.default_branch,
            f.pushed_at,
            f.updated_at,
            f.language,
            f.ci.map(|c| c.sha),
        ];
        let mut text = String::with_capacity(texts.iter().flatten().map(|t| t.len()).sum());
        let (mut ends, mut present) = ([0; TEXTS], 0);
        for (i, (t, end)) in texts.iter().zip(&mut ends).enumerate() {
            if let Some(t) = t {
                text.push_str(t);
                present |= 1 << i;
            }
            // A record is far below 4 GiB: its text comes from one reply or one KV value.
            *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        Repo {
            text: text.into_boxed_str(),
            ends,
            present,
            visibility: f.visibility,
            archived: f.archived,
            disabled: f.disabled,
            fork: f.fork,
            ci_state: f.ci.and_then(|c| c.state),
        }
    }

    fn text(&self, t: Text) -> &str {
        let i = t as usize;
        let end = |i: usize| self.ends.get(i).map_or(0, |&e| e as usize);
        let start = i.checked_sub(1).map_or(0, end);
        self.text.get(start..end(i)).unwrap_or_default()
    }

    fn optional(&self, t: Text) -> Option<&str> {
        (self.present & (1 << t as u16) != 0).then(|| self.text(t))
    }

    pub fn name(&self) -> &str {
        self.text(Text::Name)
    }

    /// The owner login as the forge spells it.
    pub fn owner(&self) -> &str {
        self.text(Text::Owner)
    }

    pub fn full_name(&self) -> &str {
        self.text(Text::FullName)
    }

    pub fn url(&self) -> &str {
        self.text(Text::Url)
    }

    pub fn description(&self) -> Option<&str> {
        self.optional(Text::Description)
    }

    pub fn default_branch(&self) -> Option<&str> {
        self.optional(Text::DefaultBranch)
    }

    pub fn pushed_at(&self) -> Option<&str> {
        self.optional(Text::PushedAt)
    }

    pub fn updated_at(&self) -> Option<&str> {
        self.optional(Text::UpdatedAt)
    }

    pub fn language(&self) -> Option<&str> {
        self.optional(Text::Language)
    }

    pub fn ci(&self) -> Option<Ci<'_>> {
        self.optional(Text::Sha).map(|sha| Ci {
            state: self.ci_state,
            sha,
        })
    }

    pub fn fields(&self) -> RepoFields<'_> {
        RepoFields {
            name: self.name(),
            owner: self.owner(),
            full_name: self.full_name(),
            url: self.url(),
            description: self.description(),
            visibility: self.visibility,
            archived: self.archived,
            disabled: self.disabled,
            fork: self.fork,
            default_branch: self.default_branch(),
            pushed_at: self.pushed_at(),
            updated_at: self.updated_at(),
            language: self.language(),
            ci: self.ci(),
        }
    }

    pub fn is_public(&self) -> bool {
        self.visibility == Visibility::Public
    }
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.fields().fmt(f)
    }
}

/// The keys of the stored form.
#[derive(Clone, Copy)]
enum Key {
    Name,
    Owner,
    FullName,
    Url,
    Description,
    Visibility,
    Archived,
    Disabled,
    Fork,
    DefaultBranch,
    PushedAt,
    UpdatedAt,
    Language,
    Ci,
}

/// In the order `write_json` writes them.
const KEYS: [(&str, Key); 14] = [
    ("name", Key::Name),
    ("owner", Key::Owner),
    ("full_name", Key::FullName),
    ("url", Key::Url),
    ("description", Key::Description),
    ("visibility", Key::Visibility),
    ("archived", Key::Archived),
    ("disabled", Key::Disabled),
    ("fork", Key::Fork),
    ("default_branch", Key::DefaultBranch),
    ("pushed_at", Key::PushedAt),
    ("updated_at", Key::UpdatedAt),
    ("language", Key::Language),
    ("ci", Key::Ci),
];

impl json::Codec for Repo {
    /// Every field, in `RepoFields` order.
    fn write_json(&self, out: &mut String) {
        let f = self.fields();
        out.push_str("{\"name\":");
        json::write_str(out, f.name);
        out.push_str(",\"owner\":");
        json::write_str(out, f.owner);
        out.push_str(",\"full_name\":");
        json::write_str(out, f.full_name);
        out.push_str(",\"url\":");
        json::write_str(out, f.url);
        out.push_str(",\"description\":");
        json::write_opt_str(out, f.description);
        out.push_str(",\"visibility\":");
        json::write_str(out, f.visibility.as_str());
        out.push_str(",\"archived\":");
        json::write_bool(out, f.archived);
        out.push_str(",\"disabled\":");
        json::write_bool(out, f.disabled);
        out.push_str(",\"fork\":");
        json::write_bool(out, f.fork);
        out.push_str(",\"default_branch\":");
        json::write_opt_str(out, f.default_branch);
        out.push_str(",\"pushed_at\":");
        json::write_opt_str(out, f.pushed_at);
        out.push_str(",\"updated_at\":");
        json::write_opt_str(out, f.updated_at);
        out.push_str(",\"language\":");
        json::write_opt_str(out, f.language);
        out.push_str(",\"ci\":");
        Ci::write_opt_json(f.ci, out);
        out.push('}');
    }

    /// As serde's derive read it: keys in any order, unknown keys skipped, a missing optional
    /// field is `None`, a missing required one or a repeated key fails.
    fn read_json(r: &mut Reader<'_>) -> json::Result<Repo> {
        let (mut name, mut owner, mut full_name, mut url) = (None, None, None, None);
        let (mut visibility, mut archived, mut disabled, mut fork) = (None, None, None, None);
        let (mut description, mut default_branch, mut pushed_at) = (None, None, None);
        let (mut updated_at, mut language, mut ci) = (None, None, None);
        let mut keys = Keys::new(&KEYS);
        keys.object(r)?;
        while let Some(key) = keys.next(r)? {
            match key {
                Some(Key::Name) => name = Some(r.str()?),
                Some(Key::Owner) => owner = Some(r.str()?),
                Some(Key::FullName) => full_name = Some(r.str()?),
                Some(Key::Url) => url = Some(r.str()?),
                Some(Key::Description) => description = r.opt_str()?,
                Some(Key::Visibility) => visibility = Some(Visibility::read_json(r)?),
                Some(Key::Archived) => archived = Some(r.bool()?),
                Some(Key::Disabled) => disabled = Some(r.bool()?),
                Some(Key::Fork) => fork = Some(r.bool()?),
                Some(Key::DefaultBranch) => default_branch = r.opt_str()?,
                Some(Key::PushedAt) => pushed_at = r.opt_str()?,
                Some(Key::UpdatedAt) => updated_at = r.opt_str()?,
                Some(Key::Language) => language = r.opt_str()?,
                Some(Key::Ci) => ci = read_ci(r)?,
                None => r.skip()?,
            }
        }
        let (state, sha) = ci.unzip();
        Ok(Repo::new(RepoFields {
            name: &required(name, r)?,
            owner: &required(owner, r)?,
            full_name: &required(full_name, r)?,
            url: &required(url, r)?,
            description: description.as_deref(),
            visibility: required(visibility, r)?,
            archived: required(archived, r)?,
            disabled: required(disabled, r)?,
            fork: required(fork, r)?,
            default_branch: default_branch.as_deref(),
            pushed_at: pushed_at.as_deref(),
            updated_at: updated_at.as_deref(),
            language: language.as_deref(),
            ci: sha.as_deref().map(|sha| Ci {
                state: state.flatten(),
                sha,
            }),
        }))
    }
}

/// A stored `ci`: `null`, or its state and sha.
fn read_ci<'a>(r: &mut Reader<'a>) -> json::Result<Option<(Option<CiState>, Cow<'a, str>)>> {
    if r.null()? {
        return Ok(None);
    }
    let (mut state, mut sha) = (None, None);
    let mut seen = Seen::default();
    r.object()?;
    while let Some(key) = r.key()? {
        match &*key {
            "state" => {
                seen.once(0, r)?;
                state = if r.null()? {
                    None
                } else {
                    Some(CiState::read_json(r)?)
                };
            }
            "sha" => {
                seen.once(1, r)?;
                sha = Some(r.str()?);
            }
            _ => r.skip()?,
        }
    }
    Ok(Some((state, required(sha, r)?)))
}

/// Every repository of one owner, as one cache entry (`v1:org:{owner}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerListing {
    /// The owner login as GitHub spells it.
    pub login: String,
    pub repos: Vec<Repo>,
}

impl json::Codec for OwnerListing {
    fn write_json(&self, out: &mut String) {
        out.push_str("{\"login\":");
        json::write_str(out, &self.login);
        out.push_str(",\"repos\":");
        self.repos.write_json(out);
        out.push('}');
    }

    fn read_json(r: &mut Reader<'_>) -> json::Result<OwnerListing> {
        let (mut login, mut repos) = (None, None);
        let mut seen = Seen::default();
        r.object()?;
        while let Some(key) = r.key()? {
            match &*key {
                "login" => {
                    seen.once(0, r)?;
                    login = Some(r.str()?.into_owned());
                }
                "repos" => {
                    seen.once(1, r)?;
                    repos = Some(Vec::<Repo>::read_json(r)?);
                }
                _ => r.skip()?,
            }
        }
        Ok(OwnerListing {
            login: required(login, r)?,
            repos: required(repos, r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Codec;

    fn fields() -> RepoFields<'static> {
        RepoFields {
            name: "hello",
            owner: "Octo",
            full_name: "Octo/hello",
            url: "https://github.com/Octo/hello",
            description: Some("says \"hi\"\n\u{1}é"),
            visibility: Visibility::Internal,
            archived: true,
            disabled: false,
            fork: true,
            default_branch: Some("main"),
            pushed_at: Some("2024-05-01T10:00:00Z"),
            updated_at: None,
            language: Some(""),
            ci: Some(Ci {
                state: None,
                sha: "deadbeef",
            }),
        }
    }

    #[test]
    fn keeps_every_field() {
        let f = fields();
        let r = Repo::new(f);
        assert_eq!(r.fields(), f);
        let bare = RepoFields {
            description: None,
            default_branch: None,
            pushed_at: None,
            language: None,
            ci: None,
            ..f
        };
        assert_eq!(Repo::new(bare).fields(), bare);
        let states = [None, Some(CiState::Success), Some(CiState::Expected)];
        for state in states {
            let ci = Some(Ci { state, sha: "s" });
            assert_eq!(Repo::new(RepoFields { ci, ..f }).ci(), ci);
        }
    }

    /// The stored form is the serde form of `RepoFields`, written and read back.
    #[test]
    fn stored_form_is_the_serde_form() {
        let r = Repo::new(fields());
        let text = r.to_json();
        assert_eq!(text, serde_json::to_string(&r.fields()).unwrap());
        assert_eq!(Repo::from_json(&text), Ok(r.clone()));
        let listing = OwnerListing {
            login: "Octo".into(),
            repos: vec![r.clone(), r],
        };
        assert_eq!(OwnerListing::from_json(&listing.to_json()), Ok(listing));
    }

    #[test]
    fn reads_what_serde_read() {
        // Any order, unknown keys, optional fields left out.
        let text = r#"{"ci":{"sha":"abc","state":"success"},"fork":false,"future":[1,{"x":null}],
            "disabled":false,"archived":false,"visibility":"public","url":"u","full_name":"o/n",
            "owner":"o","name":"n"}"#;
        let r = Repo::from_json(text).unwrap();
        assert_eq!(
            (r.name(), r.description(), r.pushed_at()),
            ("n", None, None)
        );
        assert_eq!(
            r.ci(),
            Some(Ci {
                state: Some(CiState::Success),
                sha: "abc"
            })
        );
        let good = r#"{"name":"n","owner":"o","full_name":"o/n","url":"u","visibility":"private","archived":false,"disabled":false,"fork":false"#;
        assert!(Repo::from_json(&format!("{good}}}")).is_ok());
        for bad in [
            format!("{good},\"name\":\"again\"}}"),
            format!("{good},\"ci\":{{\"state\":\"success\"}}}}"),
            format!("{good},\"ci\":{{\"sha\":\"s\",\"state\":\"green\"}}}}"),
            good.replace("private", "secret") + "}",
            good.replace(r#""url":"u","#, "") + "}",
            good.replace("false", "null") + "}",
        ] {
            assert!(Repo::from_json(&bad).is_err(), "{bad}");
        }
    }
}
