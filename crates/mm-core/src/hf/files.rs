//! The weight files of an HF folder, in every form the hub has them: one `model.safetensors`,
//! safetensors shards listed by `model.safetensors.index.json`, a PyTorch `pytorch_model.bin`
//! (read by burn-store's pickle reader) or its shards (`pytorch_model.bin.index.json`); tensors
//! in f32, f64, f16 or bf16, all read as f32.
//!
//! transformers `modeling_utils.py` looks for them in this order and so do we: a folder with
//! safetensors and a `.bin` loads the safetensors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn_store::pytorch::PytorchReader;
use safetensors::{Dtype, SafeTensors};

use super::HfError;

/// The weight files looked for in a folder, in transformers' order of preference.
pub const WEIGHT_FILES: [&str; 4] = [
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
];

/// Tensors by key: shape and f32 values.
pub(crate) type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// The first of [`WEIGHT_FILES`] present in `dir`, or an error that lists what was looked for.
pub fn find_weights(dir: &Path) -> Result<PathBuf, HfError> {
    WEIGHT_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| HfError::NoWeights {
            dir: dir.into(),
            looked_for: WEIGHT_FILES.iter().map(|s| s.to_string()).collect(),
        })
}

/// Reads every tensor of a weight file of any kind (by its name: `*.index.json` is a shard
/// index, `*.bin` / `*.pt` / `*.pth` PyTorch, anything else safetensors), skipping keys that end
/// with one of `ignore`.
pub(crate) fn read_weights(path: &Path, ignore: &[&str]) -> Result<Tensors, HfError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".index.json") {
        read_sharded(path, ignore)
    } else if [".bin", ".pt", ".pth"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        read_pytorch(path, ignore)
    } else {
        read_safetensors(path, ignore)
    }
}

/// Whether `key` is a buffer to skip (ignored keys are never converted: they may be integers,
/// such as `position_ids`).
fn ignored(key: &str, ignore: &[&str]) -> bool {
    ignore.iter().any(|s| key.ends_with(s))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HfError + '_ {
    move |source| HfError::Io {
        path: path.into(),
        source,
    }
}

fn format_error(path: &Path, reason: impl ToString) -> HfError {
    HfError::Format {
        path: path.into(),
        reason: reason.to_string(),
    }
}

fn read_safetensors(path: &Path, ignore: &[&str]) -> Result<Tensors, HfError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| format_error(path, format!("not a valid safetensors file: {e}")))?;
    let mut tensors = Tensors::new();
    for (key, view) in st.iter() {
        if ignored(key, ignore) {
            continue;
        }
        let data = to_f32(path, key, view.dtype(), view.data())?;
        tensors.insert(key.to_string(), (view.shape().to_vec(), data));
    }
    Ok(tensors)
}

/// A shard index: `{"weight_map": {key: shard file}}`; every shard is read, and every key the
/// index names must be in the shard it names.
fn read_sharded(index: &Path, ignore: &[&str]) -> Result<Tensors, HfError> {
    let text = std::fs::read_to_string(index).map_err(io(index))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format_error(index, format!("not a valid shard index: {e}")))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| format_error(index, "shard index has no `weight_map` object"))?;
    let mut by_shard: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, file) in map {
        let file = file
            .as_str()
            .filter(|f| !f.contains('/') && !f.contains('\\') && !f.starts_with('.'))
            .ok_or_else(|| format_error(index, format!("`{key}` names shard {file}")))?;
        by_shard.entry(file).or_default().push(key);
    }
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut tensors = Tensors::new();
    for (file, keys) in by_shard {
        let shard_path = dir.join(file);
        let shard = read_weights(&shard_path, ignore)?;
        let absent: Vec<String> = keys
            .iter()
            .filter(|k| !ignored(k, ignore) && !shard.contains_key(**k))
            .map(|k| k.to_string())
            .collect();
        if !absent.is_empty() {
            return Err(HfError::Missing {
                path: shard_path,
                keys: absent,
            });
        }
        tensors.extend(shard);
    }
    Ok(tensors)
}

/// A PyTorch checkpoint (zip or legacy pickle), through burn-store's reader.
fn read_pytorch(path: &Path, ignore: &[&str]) -> Result<Tensors, HfError> {
    let reader = PytorchReader::new(path)
        .map_err(|e| format_error(path, format!("not a readable PyTorch checkpoint: {e}")))?;
    let mut tensors = Tensors::new();
    let keys: BTreeSet<String> = reader
        .keys()
        .into_iter()
        .filter(|k| !ignored(k, ignore))
        .collect();
    for key in keys {
        let snapshot = reader.get(&key).expect("listed key");
        let data = snapshot
            .to_data()
            .map_err(|e| format_error(path, format!("tensor `{key}`: {e:?}")))?;
        let shape = data.shape.to_vec();
        if !data.dtype.is_float() {
            return Err(HfError::Dtype {
                path: path.into(),
                key,
                dtype: format!("{:?}", data.dtype),
            });
        }
        let values = data
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| format_error(path, format!("tensor `{key}`: {e:?}")))?;
        tensors.insert(key, (shape, values));
    }
    Ok(tensors)
}

fn to_f32(path: &Path, key: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>, HfError> {
    let conv = |n: usize, f: &dyn Fn(&[u8]) -> f32| bytes.chunks_exact(n).map(f).collect();
    Ok(match dtype {
        Dtype::F32 => conv(4, &|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Dtype::F64 => conv(8, &|b| {
            f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32
        }),
        Dtype::F16 => conv(2, &|b| half_to_f32(u16::from_le_bytes([b[0], b[1]]))),
        Dtype::BF16 => conv(2, &|b| {
            f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)
        }),
        other => {
            return Err(HfError::Dtype {
                path: path.into(),
                key: key.into(),
                dtype: format!("{other:?}"),
            });
        }
    })
}

pub(crate) fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as i32;
    let mant = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if mant == 0 => sign,
        0 => {
            // Subnormal: renormalize.
            let mut e = 0;
            let mut m = mant;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (((127 - 15 + 1 + e) as u32) << 23) | ((m & 0x3ff) << 13)
        }
        31 => sign | 0x7f80_0000 | (mant << 13),
        _ => sign | (((exp - 15 + 127) as u32) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(half_to_f32(0x7bff), 65504.0);
    }

    #[test]
    fn a_folder_without_weights_lists_what_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_weights(dir.path()).unwrap_err().to_string();
        for name in WEIGHT_FILES {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn ignored_integer_buffers_are_skipped_not_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let ids: Vec<u8> = [0i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let w: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let views = [
            (
                "embeddings.position_ids",
                safetensors::tensor::TensorView::new(Dtype::I64, vec![3], &ids).unwrap(),
            ),
            (
                "w",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![2], &w).unwrap(),
            ),
        ];
        std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
        let tensors = read_weights(&path, &["position_ids"]).unwrap();
        assert_eq!(tensors.keys().collect::<Vec<_>>(), ["w"]);
        assert_eq!(tensors["w"].1, vec![1.5, -2.0]);
        let err = read_weights(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("position_ids") && err.contains("I64"), "{err}");
    }

    #[test]
    fn bad_shard_indexes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("model.safetensors.index.json");
        for (text, needle) in [
            ("not json", "not a valid shard index"),
            ("{}", "no `weight_map`"),
            (
                r#"{"weight_map": {"a": "../x.safetensors"}}"#,
                "names shard",
            ),
            (
                r#"{"weight_map": {"a": "gone.safetensors"}}"#,
                "gone.safetensors",
            ),
        ] {
            std::fs::write(&index, text).unwrap();
            let err = read_weights(&index, &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let garbage = dir.path().join("pytorch_model.bin");
        std::fs::write(&garbage, b"not a checkpoint").unwrap();
        let err = read_weights(&garbage, &[]).unwrap_err().to_string();
        assert!(err.contains("pytorch_model.bin"), "{err}");
    }
}
