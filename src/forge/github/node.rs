//! The repository node of GitHub's replies, read into the model: the fields the query asks for
//! (`query.rs`) in GitHub's order, text into one `TextBuf`, visibility fail-closed.

use crate::json::{self, required, Keys, Reader};
use crate::model::{CiState, Flags, Repo, Text, TextBuf, Visibility};
use crate::time::{format_rfc3339, is_rfc3339, parse_rfc3339};

/// GitHub's `RepositoryVisibility`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum GhVisibility {
    Public,
    Private,
    Internal,
    /// A value GitHub may add later: treated as private (fail closed).
    Unknown,
}

/// An object of which only key `name` matters, read with `read` (`None` when it is absent);
/// other keys are skipped. Keys are matched as raw bytes first (see `Keys`).
pub(super) fn read_only<'a, T>(
    r: &mut Reader<'a>,
    name: &'static str,
    read: impl FnOnce(&mut Reader<'a>) -> json::Result<T>,
) -> json::Result<Option<T>> {
    let table = [(name, ())];
    let (mut keys, mut read, mut value) = (Keys::new(&table), Some(read), None);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        // `read` is taken by the key only: a repeated key fails in `next`.
        match key.and_then(|()| read.take()) {
            Some(read) => value = Some(read(r)?),
            None => r.skip()?,
        }
    }
    Ok(value)
}

/// `primaryLanguage`: `{"name": …}` (into `text`), or null.
pub(super) fn read_language(r: &mut Reader<'_>, text: &mut TextBuf) -> json::Result<()> {
    if r.null()? {
        return Ok(());
    }
    required(read_only(r, "name", |r| text.read(Text::Language, r))?, r)
}

#[derive(Clone, Copy)]
enum Branch {
    Name,
    Target,
}

const BRANCH_KEYS: [(&str, Branch); 2] = [("name", Branch::Name), ("target", Branch::Target)];

/// `defaultBranchRef`, or null: the branch name and its head commit's sha into `text`, the
/// head's CI state returned.
pub(super) fn read_branch(r: &mut Reader<'_>, text: &mut TextBuf) -> json::Result<Option<CiState>> {
    if r.null()? {
        return Ok(None);
    }
    let mut state = None;
    let mut keys = Keys::new(&BRANCH_KEYS);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(Branch::Name) => text.read(Text::DefaultBranch, r)?,
            Some(Branch::Target) => state = read_target(r, text)?,
            None => r.skip()?,
        }
    }
    required(text.get(Text::DefaultBranch), r)?;
    Ok(state)
}

#[derive(Clone, Copy)]
enum Target {
    Oid,
    StatusCheckRollup,
}

const TARGET_KEYS: [(&str, Target); 2] = [
    ("oid", Target::Oid),
    ("statusCheckRollup", Target::StatusCheckRollup),
];

/// The head commit, or null: its `oid` (CI is known only with it) into `text`, its CI state
/// returned.
pub(super) fn read_target(r: &mut Reader<'_>, text: &mut TextBuf) -> json::Result<Option<CiState>> {
    if r.null()? {
        return Ok(None);
    }
    let mut state = None;
    let mut keys = Keys::new(&TARGET_KEYS);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(Target::Oid) => text.read_opt(Text::Sha, r)?,
            Some(Target::StatusCheckRollup) => state = read_rollup(r)?,
            None => r.skip()?,
        }
    }
    Ok(state)
}

/// `statusCheckRollup`'s state; an unknown one is no state.
pub(super) fn read_rollup(r: &mut Reader<'_>) -> json::Result<Option<CiState>> {
    if r.null()? {
        return Ok(None);
    }
    let state = read_only(r, "state", Reader::opt_str)?.flatten();
    Ok(match state.as_deref() {
        Some("SUCCESS") => Some(CiState::Success),
        Some("FAILURE") => Some(CiState::Failure),
        Some("PENDING") => Some(CiState::Pending),
        Some("ERROR") => Some(CiState::Error),
        Some("EXPECTED") => Some(CiState::Expected),
        _ => None,
    })
}

/// `owner`: `{"login": …}`, into `text`.
pub(super) fn read_login(r: &mut Reader<'_>, text: &mut TextBuf) -> json::Result<()> {
    required(read_only(r, "login", |r| text.read(Text::Owner, r))?, r)
}

/// The keys of a repository node.
#[derive(Clone, Copy)]
enum Node {
    Name,
    Owner,
    NameWithOwner,
    Url,
    Description,
    Visibility,
    IsPrivate,
    IsArchived,
    IsDisabled,
    IsFork,
    PushedAt,
    UpdatedAt,
    PrimaryLanguage,
    DefaultBranchRef,
}

/// In the order of the query (`query.rs`), which is the order GitHub answers in.
const NODE_KEYS: [(&str, Node); 14] = [
    ("name", Node::Name),
    ("owner", Node::Owner),
    ("nameWithOwner", Node::NameWithOwner),
    ("url", Node::Url),
    ("description", Node::Description),
    ("visibility", Node::Visibility),
    ("isPrivate", Node::IsPrivate),
    ("isArchived", Node::IsArchived),
    ("isDisabled", Node::IsDisabled),
    ("isFork", Node::IsFork),
    ("pushedAt", Node::PushedAt),
    ("updatedAt", Node::UpdatedAt),
    ("primaryLanguage", Node::PrimaryLanguage),
    ("defaultBranchRef", Node::DefaultBranchRef),
];

/// Reads the repository nodes of one reply: the key order and the text buffer of one node
/// serve the next (they all come in one order).
pub(super) struct NodeReader<'t> {
    keys: Keys<'t, Node>,
    text: TextBuf,
}

impl NodeReader<'_> {
    pub(super) fn new() -> Self {
        NodeReader {
            keys: Keys::new(&NODE_KEYS),
            text: TextBuf::default(),
        }
    }

    /// One repository node (or null) straight into the model.
    pub(super) fn read(&mut self, r: &mut Reader<'_>) -> json::Result<Option<Repo>> {
        if r.null()? {
            return Ok(None);
        }
        let (keys, text) = (&mut self.keys, &mut self.text);
        text.clear();
        let (mut archived, mut disabled, mut fork) = (None, None, None);
        let (mut visibility, mut is_private, mut ci_state) = (None, None, None);
        keys.object(r)?;
        while let Some(key) = keys.next(r)? {
            match key {
                Some(Node::Name) => text.read(Text::Name, r)?,
                Some(Node::Owner) => read_login(r, text)?,
                Some(Node::NameWithOwner) => text.read(Text::FullName, r)?,
                Some(Node::Url) => text.read(Text::Url, r)?,
                Some(Node::Description) => text.read_opt(Text::Description, r)?,
                Some(Node::Visibility) => {
                    visibility = r.opt_str()?.map(|v| match &*v {
                        "PUBLIC" => GhVisibility::Public,
                        "PRIVATE" => GhVisibility::Private,
                        "INTERNAL" => GhVisibility::Internal,
                        _ => GhVisibility::Unknown,
                    });
                }
                Some(Node::IsPrivate) => {
                    is_private = if r.null()? { None } else { Some(r.bool()?) }
                }
                Some(Node::IsArchived) => archived = Some(r.bool()?),
                Some(Node::IsDisabled) => disabled = Some(r.bool()?),
                Some(Node::IsFork) => fork = Some(r.bool()?),
                Some(Node::PushedAt) => text.read_opt(Text::PushedAt, r)?,
                Some(Node::UpdatedAt) => text.read_opt(Text::UpdatedAt, r)?,
                Some(Node::PrimaryLanguage) => read_language(r, text)?,
                Some(Node::DefaultBranchRef) => ci_state = read_branch(r, text)?,
                None => r.skip()?,
            }
        }
        let visibility = match (visibility, is_private) {
            (Some(GhVisibility::Public), Some(false) | None) => Visibility::Public,
            (Some(GhVisibility::Internal), _) => Visibility::Internal,
            _ => Visibility::Private,
        };
        timestamp(text, Text::PushedAt);
        timestamp(text, Text::UpdatedAt);
        let flags = Flags {
            visibility,
            archived: required(archived, r)?,
            disabled: required(disabled, r)?,
            fork: required(fork, r)?,
            ci_state,
        };
        // The name, owner, full name and URL are required.
        Repo::build(text, flags).map(Some).ok_or(r.error())
    }
}

/// GitHub already sends `…Z` (kept as it is); anything else valid is normalised, anything
/// invalid becomes null.
pub(super) fn timestamp(text: &mut TextBuf, t: Text) {
    let Some(value) = text.get(t) else {
        return;
    };
    if value.last() == Some(&b'Z') {
        if !is_rfc3339(value) {
            text.set(t, None);
        }
        return;
    }
    let ms = std::str::from_utf8(value).ok().and_then(parse_rfc3339);
    text.set(t, ms.map(format_rfc3339).as_deref());
}
