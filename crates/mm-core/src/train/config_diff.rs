//! Where two training configs differ, named by dotted path, so that a refused `--resume` says
//! which settings to give back (`--set KEY=VALUE` takes the same paths).

use serde_json::Value;

/// The most differences an error lists; the rest are counted.
const SHOWN: usize = 6;

/// Every leaf where `saved` and `now` differ, as `path: saved X, now Y` (`absent` for a key
/// one side lacks), in key order.
pub fn config_differences(saved: &Value, now: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", Some(saved), Some(now), &mut out);
    out
}

/// The differences as one clause for an error message (at most [`SHOWN`], then a count).
pub fn describe_differences(saved: &Value, now: &Value) -> String {
    let all = config_differences(saved, now);
    let mut text = all
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if all.len() > SHOWN {
        text.push_str(&format!("; and {} more", all.len() - SHOWN));
    }
    text
}

fn walk(path: &str, saved: Option<&Value>, now: Option<&Value>, out: &mut Vec<String>) {
    match (saved, now) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(&child, a.get(key), b.get(key), out);
            }
        }
        (a, b) if a != b => {
            let show = |v: Option<&Value>| v.map_or_else(|| "absent".to_string(), Value::to_string);
            let name = if path.is_empty() { "the config" } else { path };
            out.push(format!("{name}: saved {}, now {}", show(a), show(b)));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_differing_leaf_by_its_dotted_path() {
        let saved = json!({"steps": 100, "model": {"width": 16, "pools": 3}, "old": true});
        let now = json!({"steps": 100, "model": {"width": 32, "pools": 3}, "new": [1]});
        assert_eq!(
            config_differences(&saved, &now),
            vec![
                "model.width: saved 16, now 32",
                "new: saved absent, now [1]",
                "old: saved true, now absent",
            ]
        );
        assert!(config_differences(&saved, &saved).is_empty());
        assert_eq!(
            config_differences(&json!(1), &json!("a")),
            vec!["the config: saved 1, now \"a\""]
        );
    }

    #[test]
    fn a_long_list_is_cut_and_counted() {
        let saved = json!({"a": 0, "b": 0, "c": 0, "d": 0, "e": 0, "f": 0, "g": 0, "h": 0});
        let now = json!({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1, "h": 1});
        let text = describe_differences(&saved, &now);
        assert!(text.starts_with("a: saved 0, now 1; b:"), "{text}");
        assert!(text.ends_with("f: saved 0, now 1; and 2 more"), "{text}");
    }
}
