//! The forge-neutral repository model. Forge modules produce it, the cache stores it, views project
//! it. Nothing GitHub-specific lives here, so a second forge only has to produce these types.
//!
//! A `Repo` keeps its ten text fields in one allocation (a listing of 10,000 records is 10,000
//! allocations, not 100,000): build one from borrowed `RepoFields`, read it with the accessors.
//! Its stored JSON form is `RepoFields`' serde form (the tests hold the two together); the crate
//! writes and reads it by hand with `json`, which is faster and smaller in the wasm.

use crate::json::{self, required, Keys, Reader, Seen, Writer};
use serde::Serialize;

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

    /// As a JSON string, quotes included (written without scanning for escapes).
    pub fn json(self) -> &'static str {
        match self {
            Visibility::Public => "\"public\"",
            Visibility::Private => "\"private\"",
            Visibility::Internal => "\"internal\"",
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

    /// As a JSON string, quotes included (written without scanning for escapes).
    pub fn json(self) -> &'static str {
        match self {
            CiState::Success => "\"success\"",
            CiState::Failure => "\"failure\"",
            CiState::Pending => "\"pending\"",
            CiState::Error => "\"error\"",
            CiState::Expected => "\"expected\"",
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
    pub fn write_opt_json(ci: Option<Ci<'_>>, out: &mut Writer) {
        let Some(ci) = ci else {
            out.raw("null");
            return;
        };
        out.raw("{\"state\":");
        out.raw(ci.state.map_or("null", CiState::json));
        out.raw(",\"sha\":");
        out.str(ci.sha);
        out.byte(b'}');
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

/// The text fields of a `Repo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Name,
    Owner,
    FullName,
    Url,
    Description,
    DefaultBranch,
    PushedAt,
    UpdatedAt,
    Language,
    /// The CI head's commit: CI is present when this is.
    Sha,
}

const TEXTS: usize = 10;

impl Text {
    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A record's text fields gathered, in whatever order they arrive, into one buffer, to become
/// one `Repo` (one allocation). Reused from record to record: `clear` keeps the buffer.
#[derive(Default)]
pub struct TextBuf {
    bytes: Vec<u8>,
    /// Start and end of each field in `bytes`, in `Text` order.
    spans: [(u32, u32); TEXTS],
    present: u16,
}

impl TextBuf {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.present = 0;
    }

    /// Reads a JSON string into field `t`.
    ///
    /// # Errors
    /// Not a string.
    #[inline(always)]
    pub fn read(&mut self, t: Text, r: &mut Reader<'_>) -> json::Result<()> {
        let start = self.bytes.len();
        r.str_into(&mut self.bytes)?;
        self.mark(t, start);
        Ok(())
    }

    /// Reads a JSON string into field `t`, or `null` (the field is absent).
    ///
    /// # Errors
    /// Neither a string nor `null`.
    #[inline(always)]
    pub fn read_opt(&mut self, t: Text, r: &mut Reader<'_>) -> json::Result<()> {
        let start = self.bytes.len();
        if r.opt_str_into(&mut self.bytes)? {
            self.mark(t, start);
        }
        Ok(())
    }

    pub fn set(&mut self, t: Text, value: Option<&str>) {
        self.present &= !t.bit();
        if let Some(value) = value {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(value.as_bytes());
            self.mark(t, start);
        }
    }

    /// Field `t` as read, when present.
    pub fn get(&self, t: Text) -> Option<&[u8]> {
        if self.present & t.bit() == 0 {
            return None;
        }
        let (start, end) = self.spans.get(t as usize).copied().unwrap_or_default();
        self.bytes.get(start as usize..end as usize)
    }

    #[inline(always)]
    fn mark(&mut self, t: Text, start: usize) {
        // A record's text is far below 4 GiB: it comes from one reply or one KV value.
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        if let Some(span) = self.spans.get_mut(t as usize) {
            *span = (at(start), at(self.bytes.len()));
        }
        self.present |= t.bit();
    }
}

/// A repository's fields that are not text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    pub visibility: Visibility,
    pub archived: bool,
    pub disabled: bool,
    pub fork: bool,
    /// The CI state, when CI is present (see `Text::Sha`).
    pub ci_state: Option<CiState>,
}

/// One repository as the cache stores it: every field of the allow-list, private ones included.
/// Visibility rules are applied when a view is made, never here.
#[derive(Clone)]
pub struct Repo {
    /// The text fields, in the order they were read.
    text: Box<str>,
    /// Start and end of each text field in `text`, in `Text` order.
    spans: [(u32, u32); TEXTS],
    /// Which text fields are present, one bit per `Text`.
    present: u16,
    pub visibility: Visibility,
    pub archived: bool,
    pub disabled: bool,
    pub fork: bool,
    ci_state: Option<CiState>,
}

impl Repo {
    /// What the record holds on the heap, itself included (the memory tier's budget).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Repo>() + self.text.len()
    }

    pub fn new(f: RepoFields<'_>) -> Repo {
        let mut text = TextBuf::default();
        text.set(Text::Name, Some(f.name));
        text.set(Text::Owner, Some(f.owner));
        text.set(Text::FullName, Some(f.full_name));
        text.set(Text::Url, Some(f.url));
        text.set(Text::Description, f.description);
        text.set(Text::DefaultBranch, f.default_branch);
        text.set(Text::PushedAt, f.pushed_at);
        text.set(Text::UpdatedAt, f.updated_at);
        text.set(Text::Language, f.language);
        text.set(Text::Sha, f.ci.map(|c| c.sha));
        let flags = Flags {
            visibility: f.visibility,
            archived: f.archived,
            disabled: f.disabled,
            fork: f.fork,
            ci_state: f.ci.and_then(|c| c.state),
        };
        // Every required field was just set, and `text` holds only `&str`s.
        Repo::build(&text, flags).unwrap_or_else(|| Repo {
            text: Box::default(),
            spans: [(0, 0); TEXTS],
            present: 0,
            visibility: f.visibility,
            archived: f.archived,
            disabled: f.disabled,
            fork: f.fork,
            ci_state: None,
        })
    }

    /// The record of `text` and `flags`; `None` when a required text field (name, owner, full
    /// name, URL) is absent.
    pub fn build(text: &TextBuf, flags: Flags) -> Option<Repo> {
        let required =
            Text::Name.bit() | Text::Owner.bit() | Text::FullName.bit() | Text::Url.bit();
        if text.present & required != required {
            return None;
        }
        Some(Repo {
            text: Box::from(std::str::from_utf8(&text.bytes).ok()?),
            spans: text.spans,
            present: text.present,
            visibility: flags.visibility,
            archived: flags.archived,
            disabled: flags.disabled,
            fork: flags.fork,
            ci_state: flags.ci_state,
        })
    }

    fn optional(&self, t: Text) -> Option<&str> {
        if self.present & t.bit() == 0 {
            return None;
        }
        let (start, end) = self.spans.get(t as usize).copied().unwrap_or_default();
        // Spans lie between whole strings of `text`: on character boundaries.
        self.text.get(start as usize..end as usize)
    }

    fn text(&self, t: Text) -> &str {
        self.optional(t).unwrap_or_default()
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

/// Equal fields, however the text is laid out.
impl PartialEq for Repo {
    fn eq(&self, other: &Repo) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for Repo {}

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
    fn write_json(&self, out: &mut Writer) {
        let f = self.fields();
        out.raw("{\"name\":");
        out.str(f.name);
        out.raw(",\"owner\":");
        out.str(f.owner);
        out.raw(",\"full_name\":");
        out.str(f.full_name);
        out.raw(",\"url\":");
        out.str(f.url);
        out.raw(",\"description\":");
        out.opt_str(f.description);
        out.raw(",\"visibility\":");
        out.raw(f.visibility.json());
        out.raw(",\"archived\":");
        out.bool(f.archived);
        out.raw(",\"disabled\":");
        out.bool(f.disabled);
        out.raw(",\"fork\":");
        out.bool(f.fork);
        out.raw(",\"default_branch\":");
        out.opt_str(f.default_branch);
        out.raw(",\"pushed_at\":");
        out.opt_str(f.pushed_at);
        out.raw(",\"updated_at\":");
        out.opt_str(f.updated_at);
        out.raw(",\"language\":");
        out.opt_str(f.language);
        out.raw(",\"ci\":");
        Ci::write_opt_json(f.ci, out);
        out.byte(b'}');
    }

    /// As serde's derive read it: keys in any order, unknown keys skipped, a missing optional
    /// field is `None`, a missing required one or a repeated key fails.
    fn read_json(r: &mut Reader<'_>) -> json::Result<Repo> {
        read_repo(r, &mut Keys::new(&KEYS), &mut TextBuf::default())
    }
}

impl json::Codec for Vec<Repo> {
    fn write_json(&self, out: &mut Writer) {
        out.array(self, Repo::write_json);
    }

    fn read_json(r: &mut Reader<'_>) -> json::Result<Vec<Repo>> {
        let (mut keys, mut text, mut repos) = (Keys::new(&KEYS), TextBuf::default(), Vec::new());
        r.array()?;
        while r.element()? {
            repos.push(read_repo(r, &mut keys, &mut text)?);
        }
        Ok(repos)
    }
}

/// One stored record; `keys` and `text` are reused from record to record.
fn read_repo(
    r: &mut Reader<'_>,
    keys: &mut Keys<'_, Key>,
    text: &mut TextBuf,
) -> json::Result<Repo> {
    text.clear();
    let (mut visibility, mut archived, mut disabled, mut fork) = (None, None, None, None);
    let mut ci_state = None;
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(Key::Name) => text.read(Text::Name, r)?,
            Some(Key::Owner) => text.read(Text::Owner, r)?,
            Some(Key::FullName) => text.read(Text::FullName, r)?,
            Some(Key::Url) => text.read(Text::Url, r)?,
            Some(Key::Description) => text.read_opt(Text::Description, r)?,
            Some(Key::Visibility) => visibility = Some(Visibility::read_json(r)?),
            Some(Key::Archived) => archived = Some(r.bool()?),
            Some(Key::Disabled) => disabled = Some(r.bool()?),
            Some(Key::Fork) => fork = Some(r.bool()?),
            Some(Key::DefaultBranch) => text.read_opt(Text::DefaultBranch, r)?,
            Some(Key::PushedAt) => text.read_opt(Text::PushedAt, r)?,
            Some(Key::UpdatedAt) => text.read_opt(Text::UpdatedAt, r)?,
            Some(Key::Language) => text.read_opt(Text::Language, r)?,
            Some(Key::Ci) => ci_state = read_ci(r, text)?,
            None => r.skip()?,
        }
    }
    let flags = Flags {
        visibility: required(visibility, r)?,
        archived: required(archived, r)?,
        disabled: required(disabled, r)?,
        fork: required(fork, r)?,
        ci_state,
    };
    Repo::build(text, flags).ok_or(r.error())
}

#[derive(Clone, Copy)]
enum CiKey {
    State,
    Sha,
}

const CI_KEYS: [(&str, CiKey); 2] = [("state", CiKey::State), ("sha", CiKey::Sha)];

/// A stored `ci`: `null`, or its state and its sha (into `text`, required).
fn read_ci(r: &mut Reader<'_>, text: &mut TextBuf) -> json::Result<Option<CiState>> {
    if r.null()? {
        return Ok(None);
    }
    let mut state = None;
    let mut keys = Keys::new(&CI_KEYS);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(CiKey::State) if !r.null()? => state = Some(CiState::read_json(r)?),
            Some(CiKey::State) => {}
            Some(CiKey::Sha) => text.read(Text::Sha, r)?,
            None => r.skip()?,
        }
    }
    if text.get(Text::Sha).is_none() {
        return Err(r.error());
    }
    Ok(state)
}

/// Every repository of one owner, as one cache entry (`v1:org:{owner}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerListing {
    /// The owner login as GitHub spells it.
    pub login: String,
    pub repos: Vec<Repo>,
    /// The last time a repository-level change revalidated the listing in place (live listings).
    pub revalidated_at_ms: Option<u64>,
}

impl OwnerListing {
    /// What the listing holds on the heap (the memory tier's budget).
    pub fn heap_bytes(&self) -> usize {
        let texts: usize = self.repos.iter().map(|r| r.text.len()).sum();
        std::mem::size_of::<OwnerListing>()
            + self.login.len()
            + self.repos.capacity() * std::mem::size_of::<Repo>()
            + texts
    }
}

impl OwnerListing {
    /// How young its content is: its build's `fetched_at`, or the last patch when later (a
    /// copy older than an invalidation heard here is not kept in memory).
    pub fn version_ms(&self, fetched_at_ms: u64) -> u64 {
        self.revalidated_at_ms.unwrap_or(0).max(fetched_at_ms)
    }
}

impl json::Codec for OwnerListing {
    fn write_json(&self, out: &mut Writer) {
        out.raw("{\"login\":");
        out.str(&self.login);
        if let Some(at) = self.revalidated_at_ms {
            // Before the records, so it can be read without them (`entry::peek_revalidated_at`).
            out.raw(",\"revalidated_at\":");
            out.str(&crate::time::format_rfc3339(at));
        }
        out.raw(",\"repos\":");
        self.repos.write_json(out);
        out.byte(b'}');
    }

    fn read_json(r: &mut Reader<'_>) -> json::Result<OwnerListing> {
        let (mut login, mut repos, mut revalidated_at_ms) = (None, None, None);
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
                "revalidated_at" => {
                    seen.once(2, r)?;
                    let at = crate::time::parse_rfc3339(&r.str()?);
                    revalidated_at_ms = Some(at.ok_or_else(|| r.error())?);
                }
                _ => r.skip()?,
            }
        }
        Ok(OwnerListing {
            login: required(login, r)?,
            repos: required(repos, r)?,
            revalidated_at_ms,
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
    fn quoted_names_are_the_serde_form() {
        for v in [
            Visibility::Public,
            Visibility::Private,
            Visibility::Internal,
        ] {
            assert_eq!(v.json(), serde_json::to_string(&v).unwrap());
            assert_eq!(v.json(), format!("\"{}\"", v.as_str()));
        }
        let states = [
            CiState::Success,
            CiState::Failure,
            CiState::Pending,
            CiState::Error,
            CiState::Expected,
        ];
        for s in states {
            assert_eq!(s.json(), serde_json::to_string(&s).unwrap());
            assert_eq!(s.json(), format!("\"{}\"", s.as_str()));
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
            revalidated_at_ms: None,
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

    /// The stored form as serde's derive read it before: the reference for `read_json`.
    #[derive(serde::Deserialize)]
    struct Stored {
        name: String,
        owner: String,
        full_name: String,
        url: String,
        description: Option<String>,
        visibility: StoredVisibility,
        archived: bool,
        disabled: bool,
        fork: bool,
        default_branch: Option<String>,
        pushed_at: Option<String>,
        updated_at: Option<String>,
        language: Option<String>,
        ci: Option<StoredCi>,
    }

    #[derive(serde::Deserialize)]
    struct StoredCi {
        state: Option<StoredState>,
        sha: String,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum StoredVisibility {
        Public,
        Private,
        Internal,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum StoredState {
        Success,
        Failure,
        Pending,
        Error,
        Expected,
    }

    impl Stored {
        fn into_repo(self) -> Repo {
            let state = self
                .ci
                .as_ref()
                .and_then(|c| c.state.as_ref())
                .map(|s| match s {
                    StoredState::Success => CiState::Success,
                    StoredState::Failure => CiState::Failure,
                    StoredState::Pending => CiState::Pending,
                    StoredState::Error => CiState::Error,
                    StoredState::Expected => CiState::Expected,
                });
            Repo::new(RepoFields {
                name: &self.name,
                owner: &self.owner,
                full_name: &self.full_name,
                url: &self.url,
                description: self.description.as_deref(),
                visibility: match self.visibility {
                    StoredVisibility::Public => Visibility::Public,
                    StoredVisibility::Private => Visibility::Private,
                    StoredVisibility::Internal => Visibility::Internal,
                },
                archived: self.archived,
                disabled: self.disabled,
                fork: self.fork,
                default_branch: self.default_branch.as_deref(),
                pushed_at: self.pushed_at.as_deref(),
                updated_at: self.updated_at.as_deref(),
                language: self.language.as_deref(),
                ci: self.ci.as_ref().map(|c| Ci { state, sha: &c.sha }),
            })
        }
    }

    /// Mutated stored records are read as serde's derive read them: the same record, or none.
    #[test]
    fn agrees_with_the_serde_derive() {
        use crate::json::tests::{mutate, Rng};
        let mut rng = Rng(5);
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..5000 {
            let original: serde_json::Value = serde_json::to_value(fields()).unwrap();
            let mut v = original.clone();
            for _ in 0..=rng.below(2) {
                mutate(&mut v, Some(&original), &mut rng);
            }
            let text = v.to_string();
            let ours = Repo::from_json(&text).ok();
            let theirs = serde_json::from_str::<Stored>(&text)
                .ok()
                .map(Stored::into_repo);
            assert_eq!(ours, theirs, "{text}");
            if ours.is_some() {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        assert!(accepted > 100 && refused > 100, "{accepted} {refused}");
    }
}
