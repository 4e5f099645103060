//! `Repo`: one repository, its ten text fields in one allocation read through accessors; built
//! from borrowed `RepoFields` or a filled `TextBuf`.

use super::names::{CiState, Visibility};
use super::text::{Text, TextBuf, TEXTS};
use crate::json::Writer;

/// The default branch head's CI: its state (`None` when no check reported one) and commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
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
    pub(super) text: Box<str>,
    /// Start and end of each text field in `text`, in `Text` order.
    pub(super) spans: [(u32, u32); TEXTS],
    /// Which text fields are present, one bit per `Text`.
    pub(super) present: u16,
    pub visibility: Visibility,
    pub archived: bool,
    pub disabled: bool,
    pub fork: bool,
    pub(super) ci_state: Option<CiState>,
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
