//! `--config FILE` and `--set dotted.path=value`: JSON configs with overrides.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// Reads a JSON config and applies `--set dotted.path=value` overrides to it.
///
/// A value that parses as JSON is used as JSON (`3`, `1e-3`, `true`, `"gelu"`); anything else
/// is taken as a string. Unknown paths are an error, so a typo never passes silently.
pub fn load_config_with_overrides(path: &Path, overrides: &[String]) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let mut value: Value = serde_json::from_str(&text)
        .with_context(|| format!("config {} is not valid JSON", path.display()))?;
    apply_overrides(&mut value, overrides, &path.display().to_string())?;
    Ok(value)
}

/// Applies `--set KEY=VALUE` overrides to a config `value` (`source` names it in errors).
pub fn apply_overrides(value: &mut Value, overrides: &[String], source: &str) -> Result<()> {
    for item in overrides {
        let (key, raw) = item
            .split_once('=')
            .with_context(|| format!("--set {item}: expected KEY=VALUE, e.g. train.steps=200"))?;
        let new: Value =
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        let mut slot = &mut *value;
        for part in key.split('.') {
            slot = slot
                .get_mut(part)
                .with_context(|| format!("--set {item}: `{key}` is not a field of {source}"))?;
        }
        *slot = new;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_nested_fields_and_reject_typos() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"train": {"steps": 10, "lr": 0.1}, "name": "x"}"#).unwrap();
        let v = load_config_with_overrides(&path, &["train.steps=20".into(), "name=gelu".into()])
            .unwrap();
        assert_eq!(v["train"]["steps"], 20);
        assert_eq!(v["name"], "gelu");
        assert!(load_config_with_overrides(&path, &["train.stpes=1".into()]).is_err());
        assert!(load_config_with_overrides(&path, &["train.steps".into()]).is_err());
    }
}
