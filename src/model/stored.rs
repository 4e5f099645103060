//! The stored JSON of `Repo` and `OwnerListing`, written and read by hand with `json` (faster and
//! smaller in the wasm than serde's derives; the tests hold it to `RepoFields`' serde form).

use super::listing::{Changed, OwnerListing};
use super::names::{CiState, Visibility};
use super::repo::{Ci, Flags, Repo};
use super::text::{Text, TextBuf};
use crate::json::{self, required, Keys, Reader, Seen, Writer};

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

impl json::Codec for OwnerListing {
    fn write_json(&self, out: &mut Writer) {
        out.raw("{\"login\":");
        out.str(&self.login);
        if let Some(at) = self.revalidated_at_ms {
            // Before the records, so it can be read without them (`entry::peek_revalidated_at`).
            out.raw(",\"revalidated_at\":");
            out.str(&crate::time::format_rfc3339(at));
        }
        let c = self.changed;
        if c != Changed::default() {
            // What each scope saw change last (ms): `[all, public, redacted]`.
            out.raw(",\"changed_at\":[");
            for (i, at) in [c.all, c.public, c.redacted].into_iter().enumerate() {
                if i > 0 {
                    out.byte(b',');
                }
                match at {
                    Some(at) => out.uint(at),
                    None => out.raw("null"),
                }
            }
            out.byte(b']');
        }
        out.raw(",\"repos\":");
        self.repos.write_json(out);
        out.byte(b'}');
    }

    fn read_json(r: &mut Reader<'_>) -> json::Result<OwnerListing> {
        let (mut login, mut repos, mut revalidated_at_ms) = (None, None, None);
        let mut changed = Changed::default();
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
                "changed_at" => {
                    seen.once(3, r)?;
                    changed = read_changed(r)?;
                }
                _ => r.skip()?,
            }
        }
        Ok(OwnerListing {
            login: required(login, r)?,
            repos: required(repos, r)?,
            revalidated_at_ms,
            changed,
        })
    }
}

/// `[all, public, redacted]`, each a number of ms or null: exactly three.
fn read_changed(r: &mut Reader<'_>) -> json::Result<Changed> {
    let mut at = [None; 3];
    r.array()?;
    for slot in &mut at {
        if !r.element()? {
            return Err(r.error());
        }
        *slot = if r.null()? { None } else { Some(r.u64()?) };
    }
    if r.element()? {
        return Err(r.error());
    }
    let [all, public, redacted] = at;
    Ok(Changed {
        all,
        public,
        redacted,
    })
}
