//! The model's tests: stored forms against serde's, accessors, heap sizes.

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
        changed: Default::default(),
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
