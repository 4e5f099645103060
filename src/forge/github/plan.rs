//! The reply to a partitioned build's first request (`query::owner_query` with counts): each
//! part's `totalCount`, aliased `p0`, `p1`, … beside the first page. Read with serde, once per
//! build (the page in the same reply is `parse::owner_page`'s).

use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "repositoryOwner", borrow)]
    owner: Option<HashMap<&'a str, &'a RawValue>>,
}

#[derive(Deserialize)]
struct Count {
    #[serde(rename = "totalCount")]
    total: u64,
}

/// The counts of the `parts` aliases, in alias order; `None` when the owner is missing or any
/// count is absent or not a whole number (the build then pages sequentially).
pub fn part_counts(body: &[u8], parts: usize) -> Option<Vec<u64>> {
    let reply: Reply<'_> = serde_json::from_slice(body).ok()?;
    let owner = reply.data?.owner?;
    (0..parts)
        .map(|i| {
            let raw = owner.get(format!("p{i}").as_str())?;
            serde_json::from_slice::<Count>(raw.get().as_bytes())
                .ok()
                .map(|c| c.total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_are_read_in_alias_order_or_not_at_all() {
        let body =
            |owner: serde_json::Value| json!({"data": {"repositoryOwner": owner}}).to_string();
        let ok = body(
            json!({"login": "big-org", "repositories": {"totalCount": 3, "nodes": []},
            "p1": {"totalCount": 2}, "p0": {"totalCount": 1}}),
        );
        assert_eq!(part_counts(ok.as_bytes(), 2), Some(vec![1, 2]));
        let cases = [
            body(json!({"p0": {"totalCount": 1}})),
            body(json!({"p0": {"totalCount": 1}, "p1": {"totalCount": -2}})),
            body(json!({"p0": {"totalCount": 1}, "p1": {"totalCount": "2"}})),
            body(json!(null)),
            json!({"data": null, "errors": [{"type": "NOT_FOUND"}]}).to_string(),
            "not json".to_string(),
        ];
        for case in cases {
            assert_eq!(part_counts(case.as_bytes(), 2), None, "{case}");
        }
    }
}
