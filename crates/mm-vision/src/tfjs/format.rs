//! Reading a TensorFlow.js graph model: `model.json` (a TensorFlow `GraphDef` written as JSON,
//! plus a manifest of the weights) and its binary weight shards, the constants decoded to
//! `f32` (from `float32`, `float16`, `int32`, or `uint8` / `uint16` affine quantization).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::TfjsError;

/// One operation of the graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its unique name; other nodes name it as an input.
    pub name: String,
    /// The TensorFlow operation (`_FusedConv2D`, `Add`, ...).
    pub op: String,
    /// Names of the nodes it reads (`name:k` for a node's k-th output; `^name` for control).
    pub inputs: Vec<String>,
    /// Its attributes as written (`{"list": {"i": [...]}}`, `{"b": true}`, `{"s": base64}`).
    pub attrs: serde_json::Map<String, Value>,
}

/// A constant: its shape and its values as `f32` (integers are exact up to 2^24).
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    /// Dimensions, outermost first (TensorFlow's order).
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub values: Vec<f32>,
}

/// A graph model as read from disk.
#[derive(Debug, Clone)]
pub struct GraphModel {
    /// Every node, in the file's order.
    pub nodes: Vec<Node>,
    /// Every constant the weight manifest holds, by node name.
    pub constants: HashMap<String, Constant>,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> TfjsError {
    TfjsError::Format(format!("{}: {what}", path.display()))
}

impl GraphModel {
    /// Reads `model.json` (or the given JSON file) and the weight files its manifest names,
    /// from the same folder.
    pub fn load(path: &Path) -> Result<Self, TfjsError> {
        let json_path: PathBuf = if path.is_dir() {
            path.join("model.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&json_path)
            .map_err(|e| TfjsError::Io(format!("{}: {e}", json_path.display())))?;
        let root: Value =
            serde_json::from_str(&text).map_err(|e| bad(&json_path, format!("not JSON: {e}")))?;
        let folder = json_path.parent().unwrap_or(Path::new("."));
        let nodes = root
            .pointer("/modelTopology/node")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(&json_path, "no modelTopology.node (not a graph model?)"))?
            .iter()
            .map(|n| parse_node(n).ok_or_else(|| bad(&json_path, format!("malformed node {n}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let groups = root
            .get("weightsManifest")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(&json_path, "no weightsManifest"))?;
        let mut constants = HashMap::new();
        for group in groups {
            read_group(group, folder, &json_path, &mut constants)?;
        }
        Ok(GraphModel { nodes, constants })
    }
}

fn parse_node(n: &Value) -> Option<Node> {
    Some(Node {
        name: n.get("name")?.as_str()?.to_string(),
        op: n.get("op")?.as_str()?.to_string(),
        inputs: match n.get("input") {
            Some(list) => list
                .as_array()?
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<_>>()?,
            None => Vec::new(),
        },
        attrs: match n.get("attr") {
            Some(a) => a.as_object()?.clone(),
            None => serde_json::Map::new(),
        },
    })
}

/// Reads one manifest group: its shards concatenated, then each weight in turn.
fn read_group(
    group: &Value,
    folder: &Path,
    json_path: &Path,
    out: &mut HashMap<String, Constant>,
) -> Result<(), TfjsError> {
    let mut bytes = Vec::new();
    for shard in group
        .get("paths")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(json_path, "a manifest group without paths"))?
    {
        let name = shard
            .as_str()
            .ok_or_else(|| bad(json_path, "a shard path that is not a string"))?;
        // Shards sit beside model.json: a manifest must not reach other files.
        let inside = Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            return Err(bad(
                json_path,
                format!("shard path {name:?} leaves the model's folder"),
            ));
        }
        let p = folder.join(name);
        bytes
            .extend(std::fs::read(&p).map_err(|e| TfjsError::Io(format!("{}: {e}", p.display())))?);
    }
    let weights = group
        .get("weights")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(json_path, "a manifest group without weights"))?;
    let mut at = 0usize;
    for w in weights {
        let name = w.get("name").and_then(Value::as_str);
        let shape: Option<Vec<usize>> = w
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|s| s.iter().map(|d| d.as_u64().map(|d| d as usize)).collect());
        let (Some(name), Some(shape)) = (name, shape) else {
            return Err(bad(json_path, format!("malformed weight entry {w}")));
        };
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let dtype = w.get("dtype").and_then(Value::as_str).unwrap_or("float32");
        let quant = w.get("quantization");
        let stored = quant
            .and_then(|q| q.get("dtype"))
            .and_then(Value::as_str)
            .unwrap_or(dtype);
        let width = match stored {
            "float32" | "int32" => 4,
            "float16" | "uint16" => 2,
            "uint8" | "bool" => 1,
            other => {
                return Err(bad(
                    json_path,
                    format!("weight {name}: dtype {other} not supported"),
                ));
            }
        };
        let end = count
            .and_then(|c| c.checked_mul(width))
            .and_then(|n| n.checked_add(at));
        let raw = end.and_then(|end| bytes.get(at..end)).ok_or_else(|| {
            bad(
                json_path,
                format!(
                    "weight {name} runs past the end of its shards ({} bytes)",
                    bytes.len()
                ),
            )
        })?;
        let values = decode(raw, stored, quant)
            .map_err(|e| bad(json_path, format!("weight {name}: {e}")))?;
        at += raw.len();
        out.insert(name.to_string(), Constant { shape, values });
    }
    Ok(())
}

/// Values of one weight from its stored bytes (little-endian).
fn decode(raw: &[u8], stored: &str, quant: Option<&Value>) -> Result<Vec<f32>, String> {
    let affine = |q: &Value| -> Result<(f32, f32), String> {
        let get = |k: &str| q.get(k).and_then(Value::as_f64).map(|v| v as f32);
        match (get("scale"), get("min")) {
            (Some(s), Some(m)) => Ok((s, m)),
            _ => Err("quantized without scale and min".into()),
        }
    };
    Ok(match stored {
        "float32" => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "int32" => raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        "float16" => raw
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        "uint16" => {
            let (s, m) = affine(quant.ok_or("uint16 without quantization")?)?;
            raw.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as f32 * s + m)
                .collect()
        }
        "uint8" => match quant {
            Some(q) => {
                let (s, m) = affine(q)?;
                raw.iter().map(|&b| b as f32 * s + m).collect()
            }
            None => raw.iter().map(|&b| b as f32).collect(),
        },
        "bool" => raw.iter().map(|&b| (b != 0) as u8 as f32).collect(),
        other => return Err(format!("dtype {other} not supported")),
    })
}

/// IEEE half precision to single.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Standard base64 (the graph's string attributes), padding optional.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

impl Node {
    /// A list-of-integers attribute (`strides`, `dilations`, `ksize`).
    pub fn ints(&self, key: &str) -> Option<Vec<i64>> {
        let list = self.attrs.get(key)?.pointer("/list/i")?.as_array()?;
        list.iter()
            .map(|v| {
                v.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| v.as_i64())
            })
            .collect()
    }

    /// A string attribute (`padding`, `data_format`), decoded.
    pub fn string(&self, key: &str) -> Option<String> {
        let s = self.attrs.get(key)?.get("s")?.as_str()?;
        String::from_utf8(base64_decode(s)?).ok()
    }

    /// A list-of-strings attribute (`fused_ops`), decoded.
    pub fn strings(&self, key: &str) -> Option<Vec<String>> {
        let list = self.attrs.get(key)?.pointer("/list/s")?.as_array()?;
        list.iter()
            .map(|v| String::from_utf8(base64_decode(v.as_str()?)?).ok())
            .collect()
    }

    /// A boolean attribute, false when absent.
    pub fn flag(&self, key: &str) -> bool {
        self.attrs
            .get(key)
            .and_then(|v| v.get("b"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}
