//! Log lines, one JSON object each (`{"level","msg",…}`, what Workers Logs indexes), handed to a
//! sink the shell sets once per isolate; natively nothing is written unless a test sets one.
//! Callers pass owners, counts and times only: never a secret, a token or a token's claims.

use serde_json::{Map, Value};
use std::cell::Cell;

thread_local! {
    static SINK: Cell<Option<fn(&str)>> = const { Cell::new(None) };
}

/// Where this isolate's log lines go from now on.
pub fn set_sink(sink: fn(&str)) {
    SINK.with(|s| s.set(Some(sink)));
}

/// Writes `{"level":level,"msg":msg, …fields}` as one line.
pub fn line(level: &str, msg: &str, fields: Value) {
    let Some(sink) = SINK.with(Cell::get) else {
        return;
    };
    let mut object = Map::new();
    object.insert("level".into(), level.into());
    object.insert("msg".into(), msg.into());
    if let Value::Object(more) = fields {
        object.extend(more);
    }
    sink(&Value::Object(object).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    #[test]
    fn one_json_object_per_line() {
        line("info", "before any sink", serde_json::json!({}));
        set_sink(|l| LINES.with(|v| v.borrow_mut().push(l.to_string())));
        line(
            "warn",
            "drift",
            serde_json::json!({"owner": "acme", "narrowed": 2}),
        );
        let lines = LINES.with(|v| v.borrow().clone());
        assert_eq!(lines.len(), 1, "nothing is kept from before the sink");
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"level": "warn", "msg": "drift", "owner": "acme", "narrowed": 2})
        );
    }
}
