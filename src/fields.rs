//! The `fields=` allow-list: which repository fields a view may carry, always in allow-list order.

/// Declares the allow-list once: `ALLOWED`, the names in order, and `Field`, with each field's
/// name and JSON key (a view writes keys without assembling them).
macro_rules! allow_list {
    ($($field:ident $name:literal,)*) => {
        /// The allow-list, in the order views emit it.
        pub const ALLOWED: [&str; 15] = [$($name),*];

        /// One allow-listed field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Field {
            $($field),*
        }

        impl Field {
            /// Every field, in allow-list order.
            const ALL: [Field; 15] = [$(Field::$field),*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Field::$field => $name),*
                }
            }

            /// `{"name":` for the first field of a view, `,"name":` for the others: what a
            /// view writes before the value, in one piece.
            pub fn json_key(self, first: bool) -> &'static str {
                match (self, first) {
                    $((Field::$field, true) => concat!("{\"", $name, "\":"),)*
                    $((Field::$field, false) => concat!(",\"", $name, "\":"),)*
                }
            }
        }
    };
}

allow_list! {
    Name "name",
    Owner "owner",
    FullName "full_name",
    Url "url",
    Description "description",
    Visibility "visibility",
    Private "private",
    Archived "archived",
    Disabled "disabled",
    Fork "fork",
    DefaultBranch "default_branch",
    PushedAt "pushed_at",
    UpdatedAt "updated_at",
    Language "language",
    Ci "ci",
}

pub const DEFAULT: &str = "name,full_name,visibility,archived,pushed_at,ci";

/// `ALLOWED` joined by `", "`, for messages (written out: a `join` at run time costs the wasm a
/// second copy of `join`; a test checks the two agree).
pub const ALLOWED_LIST: &str = "name, owner, full_name, url, description, visibility, private, \
                                archived, disabled, fork, default_branch, pushed_at, updated_at, \
                                language, ci";

/// A set of allow-list positions; iteration follows allow-list order, so duplicates and the
/// caller's order cannot change the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSet(u16);

impl FieldSet {
    /// The set as a number (memory keys of rendered answers).
    pub fn bits(self) -> u16 {
        self.0
    }

    /// A set from its `bits` (`None`: a bit outside the allow-list, or none at all).
    pub fn from_bits(bits: u16) -> Option<FieldSet> {
        (bits != 0 && u32::from(bits) >> ALLOWED.len() == 0).then_some(FieldSet(bits))
    }

    /// # Errors
    /// A message listing the allowed fields when `spec` is empty or names an unknown field.
    pub fn parse(spec: &str) -> Result<FieldSet, String> {
        let mut bits = 0u16;
        for part in spec.split(',') {
            match ALLOWED.iter().position(|f| *f == part) {
                Some(i) => bits |= 1 << i,
                None => {
                    return Err(format!(
                        "fields must be a comma-separated list of: {ALLOWED_LIST}"
                    ))
                }
            }
        }
        Ok(FieldSet(bits))
    }

    pub fn default_set() -> FieldSet {
        // DEFAULT only names allow-listed fields; the test below keeps it that way.
        FieldSet::parse(DEFAULT).unwrap_or(FieldSet(0))
    }

    pub fn contains(self, name: &str) -> bool {
        ALLOWED
            .iter()
            .position(|f| *f == name)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// Only the fields also in `other`.
    pub fn intersect(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 & other.0)
    }

    pub fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL
            .into_iter()
            .filter(move |f| self.0 & (1 << *f as u16) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expected: Option<&[&str]>) {
        let got = FieldSet::parse(spec)
            .ok()
            .map(|s| s.iter().map(Field::name).collect::<Vec<_>>());
        assert_eq!(got.as_deref(), expected, "{spec:?}");
    }

    #[test]
    fn parsing() {
        check("name", Some(&["name"]));
        check("ci,name", Some(&["name", "ci"]));
        check("name,name,name", Some(&["name"]));
        check(
            "language,owner,private",
            Some(&["owner", "private", "language"]),
        );
        check(&ALLOWED.join(","), Some(&ALLOWED));
        assert_eq!(ALLOWED_LIST, ALLOWED.join(", "));
        check("", None);
        check("name,", None);
        check(",name", None);
        check("Name", None);
        check("name ,ci", None);
        check("token", None);
        check("node_id", None);
    }

    #[test]
    fn default_is_allow_listed() {
        let d = FieldSet::default_set();
        assert_eq!(
            d.iter().map(Field::name).collect::<Vec<_>>(),
            DEFAULT.split(',').collect::<Vec<_>>()
        );
    }

    #[test]
    fn fields_follow_the_allow_list() {
        for (i, f) in Field::ALL.into_iter().enumerate() {
            assert_eq!(f as usize, i);
            assert_eq!(f.name(), ALLOWED[i]);
            assert_eq!(f.json_key(true), format!("{{\"{}\":", ALLOWED[i]));
            assert_eq!(f.json_key(false), format!(",\"{}\":", ALLOWED[i]));
        }
    }

    #[test]
    fn error_lists_allowed_fields() {
        let err = FieldSet::parse("bogus").unwrap_err();
        for f in ALLOWED {
            assert!(err.contains(f), "{err}");
        }
    }
}
