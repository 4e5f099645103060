//! A part of an owner's listing: the repositories of one `visibility`, `isArchived` and `isFork`
//! (GitHub's `repositories` filters). The twelve parts are disjoint and together hold the whole
//! listing, which is what lets a build page them side by side (DESIGN.md, "Partitioned builds").

use super::{Repo, Visibility};

/// One of the twelve parts: `visibility`, `isArchived` and `isFork` as GitHub's connection takes
/// them. Every repository is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub visibility: Visibility,
    pub archived: bool,
    pub fork: bool,
}

impl Part {
    /// The twelve parts, in a fixed order (the count query's aliases follow it).
    pub fn all() -> [Part; 12] {
        let mut out = [Part {
            visibility: Visibility::Public,
            archived: false,
            fork: false,
        }; 12];
        let visibilities = [
            Visibility::Public,
            Visibility::Private,
            Visibility::Internal,
        ];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = Part {
                visibility: visibilities
                    .get(i / 4)
                    .copied()
                    .unwrap_or(Visibility::Public),
                archived: i % 4 >= 2,
                fork: i % 2 == 1,
            };
        }
        out
    }

    /// Whether `repo` belongs to this part (as GitHub's filters would place it).
    pub fn holds(&self, repo: &Repo) -> bool {
        repo.visibility == self.visibility
            && repo.archived == self.archived
            && repo.fork == self.fork
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::repo;

    #[test]
    fn twelve_parts_hold_every_repository_exactly_once() {
        let parts = Part::all();
        for v in [
            Visibility::Public,
            Visibility::Private,
            Visibility::Internal,
        ] {
            for archived in [false, true] {
                for fork in [false, true] {
                    let mut r = repo("acme", "r", v);
                    r.archived = archived;
                    r.fork = fork;
                    assert_eq!(
                        parts.iter().filter(|p| p.holds(&r)).count(),
                        1,
                        "{v:?} {archived} {fork}"
                    );
                }
            }
        }
    }
}
