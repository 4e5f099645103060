//! Log lines, one JSON object each (`{"level","msg",…}`, what Workers Logs indexes), handed to a
//! sink the shell sets once per isolate; natively nothing is written unless a test sets one.
//! Callers pass owners, counts and times only: never a secret, a token or a token's claims.

use serde::Serialize;
use std::cell::Cell;

thread_local! {
    static SINK: Cell<Option<fn(&str)>> = const { Cell::new(None) };
}

/// Where this isolate's log lines go from now on.
pub fn set_sink(sink: fn(&str)) {
    SINK.with(|s| s.set(Some(sink)));
}

/// Writes `fields` as one line: a struct deriving `Serialize` whose fields include `level` and
/// `msg` and are declared in sorted order, the order log lines' keys have always had (they were
/// a `serde_json::Map`, which sorts).
pub fn line<L: Serialize>(fields: &L) {
    let Some(sink) = SINK.with(Cell::get) else {
        return;
    };
    if let Ok(text) = serde_json::to_string(fields) {
        sink(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    #[derive(Serialize)]
    struct Drift<'a> {
        level: &'a str,
        msg: &'a str,
        narrowed: u32,
        owner: &'a str,
    }

    #[test]
    fn one_json_object_per_line() {
        let drift = Drift {
            level: "warn",
            msg: "drift",
            narrowed: 2,
            owner: "acme",
        };
        line(&drift);
        set_sink(|l| LINES.with(|v| v.borrow_mut().push(l.to_string())));
        line(&drift);
        let lines = LINES.with(|v| v.borrow().clone());
        assert_eq!(lines.len(), 1, "nothing is kept from before the sink");
        assert_eq!(
            lines[0],
            r#"{"level":"warn","msg":"drift","narrowed":2,"owner":"acme"}"#
        );
    }
}
