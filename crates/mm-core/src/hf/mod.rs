//! HuggingFace weights in and out.
//!
//! Each model declares its key table once, as an [`HfParams::visit_hf`] implementation that names
//! every parameter's HF key and layout ([`Layout`]). The same table drives loading
//! ([`WeightMap`], strict: a missing or unexpected key, or a shape that disagrees with the
//! config, is an error naming it) and exporting ([`WeightWriter`]). [`files`] reads the weight
//! files of a folder in every form the hub has them (single, sharded, PyTorch `.bin`).

pub mod files;

pub use files::{WEIGHT_FILES, find_weights};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use safetensors::Dtype;

/// How an HF tensor relates to ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Same shape, same order.
    Same,
    /// HF `[out, in]` (a `torch.nn.Linear` weight) against our `[in, out]`.
    Transposed,
    /// HF `[out, channels, k, k]` (a patch `Conv2d` with stride = kernel) against our
    /// `[channels * k * k, out]` patch projection.
    ConvAsLinear,
    /// HF scalar `[]` against our `[1]`.
    Scalar,
}

/// Why weights could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A folder holds none of the weight files we read.
    #[error("no weights in {dir}: looked for {}", looked_for.join(", "))]
    NoWeights {
        /// The folder.
        dir: PathBuf,
        /// The file names looked for.
        looked_for: Vec<String>,
    },
    /// The file is not a valid weight file of its kind.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A tensor has a dtype we do not read.
    #[error("{path}: tensor `{key}` has unsupported dtype {dtype}")]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        key: String,
        /// Its dtype.
        dtype: String,
    },
    /// Tensors the model needs are absent.
    #[error("{path}: missing weights: {}", keys.join(", "))]
    Missing {
        /// The file.
        path: PathBuf,
        /// The absent keys.
        keys: Vec<String>,
    },
    /// Tensors the model does not have are present.
    #[error("{path}: unexpected weights (not part of this model): {}", keys.join(", "))]
    Unexpected {
        /// The file.
        path: PathBuf,
        /// The extra keys.
        keys: Vec<String>,
    },
    /// A tensor's shape disagrees with the config.
    #[error("{path}: `{key}` has shape {actual:?} but the config implies {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        key: String,
        /// Its shape in the file.
        actual: Vec<usize>,
        /// The shape the config implies, in HF layout.
        expected: Vec<usize>,
    },
}

/// Something that walks a model's parameters with their HF keys.
pub trait ParamVisitor<B: Backend> {
    /// A 1-D parameter.
    fn visit1(&mut self, key: &str, layout: Layout, param: &mut Param<Tensor<B, 1>>);
    /// A 2-D parameter.
    fn visit2(&mut self, key: &str, layout: Layout, param: &mut Param<Tensor<B, 2>>);
}

/// A model (or part) whose parameters have HF keys: its key table.
pub trait HfParams<B: Backend> {
    /// Visits every parameter, keys prefixed with `prefix` (e.g. `text_model.`).
    fn visit_hf(&mut self, prefix: &str, visitor: &mut dyn ParamVisitor<B>);
}

impl<B: Backend> HfParams<B> for Linear<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        v.visit2(
            &format!("{prefix}weight"),
            Layout::Transposed,
            &mut self.weight,
        );
        if let Some(bias) = self.bias.as_mut() {
            v.visit1(&format!("{prefix}bias"), Layout::Same, bias);
        }
    }
}

impl<B: Backend> HfParams<B> for LayerNorm<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        v.visit1(&format!("{prefix}weight"), Layout::Same, &mut self.gamma);
        if let Some(beta) = self.beta.as_mut() {
            v.visit1(&format!("{prefix}bias"), Layout::Same, beta);
        }
    }
}

/// The shape a parameter of our shape `ours` has in HF layout.
fn hf_shape(layout: Layout, ours: &[usize], conv_channels: usize) -> Vec<usize> {
    match layout {
        Layout::Same => ours.to_vec(),
        Layout::Transposed => vec![ours[1], ours[0]],
        Layout::ConvAsLinear => {
            let k = ((ours[0] / conv_channels) as f64).sqrt().round() as usize;
            vec![ours[1], conv_channels, k, k]
        }
        Layout::Scalar => vec![],
    }
}

/// Transposes a row-major `rows x cols` matrix.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// The tensors of a safetensors file, as f32, with the keys not yet taken.
pub struct WeightMap<B: Backend> {
    path: PathBuf,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    taken: BTreeSet<String>,
    missing: Vec<String>,
    shape_error: Option<HfError>,
    ignore: Vec<String>,
    conv_channels: usize,
    device: B::Device,
}

impl<B: Backend> WeightMap<B> {
    /// Reads the weights of the HF folder `dir`, whichever of [`WEIGHT_FILES`] it has (the first
    /// in that order). `ignore` as for [`Self::open`].
    pub fn open_folder(dir: &Path, ignore: &[&str], device: &B::Device) -> Result<Self, HfError> {
        Self::open(&find_weights(dir)?, ignore, device)
    }

    /// Reads a weight file: `.safetensors`, a shard index (`*.index.json`) or a PyTorch
    /// checkpoint (`.bin`). `ignore` lists key suffixes that are buffers, not weights (e.g.
    /// `position_ids`), and may be present or not.
    pub fn open(path: &Path, ignore: &[&str], device: &B::Device) -> Result<Self, HfError> {
        let tensors = files::read_weights(path, ignore)?;
        Ok(Self {
            path: path.into(),
            tensors,
            taken: BTreeSet::new(),
            missing: Vec::new(),
            shape_error: None,
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
            conv_channels: 3,
            device: device.clone(),
        })
    }

    /// Sets the channel count used to check [`Layout::ConvAsLinear`] shapes.
    pub fn with_conv_channels(mut self, channels: usize) -> Self {
        self.conv_channels = channels;
        self
    }

    /// Whether the file holds `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Fills `model`'s parameters through its key table, then checks that every key was used.
    pub fn load_into<M: HfParams<B>>(mut self, model: &mut M, prefix: &str) -> Result<(), HfError> {
        model.visit_hf(prefix, &mut self);
        if let Some(e) = self.shape_error.take() {
            return Err(e);
        }
        if !self.missing.is_empty() {
            return Err(HfError::Missing {
                path: self.path,
                keys: self.missing,
            });
        }
        let unexpected: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| {
                !self.taken.contains(*k) && !self.ignore.iter().any(|s| k.ends_with(s.as_str()))
            })
            .cloned()
            .collect();
        if !unexpected.is_empty() {
            return Err(HfError::Unexpected {
                path: self.path,
                keys: unexpected,
            });
        }
        Ok(())
    }

    /// Takes `key`, checking it has the HF shape our `ours` implies; returns our-layout data.
    fn take(&mut self, key: &str, layout: Layout, ours: &[usize]) -> Option<Vec<f32>> {
        let expected = hf_shape(layout, ours, self.conv_channels);
        let Some((shape, data)) = self.tensors.get(key) else {
            self.missing.push(key.to_string());
            return None;
        };
        let same = shape == &expected
            || (layout == Layout::Scalar && shape.iter().product::<usize>() == 1);
        if !same {
            self.shape_error.get_or_insert(HfError::Shape {
                path: self.path.clone(),
                key: key.to_string(),
                actual: shape.clone(),
                expected,
            });
            return None;
        }
        self.taken.insert(key.to_string());
        Some(match layout {
            // HF [out, in...] flattened to [out, in] -> ours [in, out].
            Layout::Transposed | Layout::ConvAsLinear => transpose(data, ours[1], ours[0]),
            Layout::Same | Layout::Scalar => data.clone(),
        })
    }
}

impl<B: Backend> ParamVisitor<B> for WeightMap<B> {
    fn visit1(&mut self, key: &str, layout: Layout, param: &mut Param<Tensor<B, 1>>) {
        let shape = param.dims();
        if let Some(data) = self.take(key, layout, &shape) {
            *param = Param::from_tensor(Tensor::from_data(
                TensorData::new(data, shape),
                &self.device,
            ));
        }
    }

    fn visit2(&mut self, key: &str, layout: Layout, param: &mut Param<Tensor<B, 2>>) {
        let shape = param.dims();
        if let Some(data) = self.take(key, layout, &shape) {
            *param = Param::from_tensor(Tensor::from_data(
                TensorData::new(data, shape),
                &self.device,
            ));
        }
    }
}

/// Collects a model's parameters under their HF keys and writes them as safetensors (f32).
#[derive(Default)]
pub struct WeightWriter {
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    conv_channels: usize,
}

impl WeightWriter {
    /// An empty writer; `conv_channels` sizes [`Layout::ConvAsLinear`] tensors.
    pub fn new(conv_channels: usize) -> Self {
        Self {
            tensors: BTreeMap::new(),
            conv_channels,
        }
    }

    /// Collects `model`'s parameters.
    pub fn collect<B: Backend, M: HfParams<B>>(&mut self, model: &mut M, prefix: &str) {
        model.visit_hf(prefix, &mut Collector { writer: self });
    }

    fn put(&mut self, key: &str, layout: Layout, ours: &[usize], data: Vec<f32>) {
        let shape = hf_shape(layout, ours, self.conv_channels);
        let data = match layout {
            Layout::Transposed | Layout::ConvAsLinear => transpose(&data, ours[0], ours[1]),
            Layout::Same | Layout::Scalar => data,
        };
        self.tensors.insert(key.to_string(), (shape, data));
    }

    /// Writes the collected tensors (plus `metadata`) as a safetensors file, atomically.
    pub fn write(
        &self,
        path: &Path,
        metadata: Option<std::collections::HashMap<String, String>>,
    ) -> Result<(), HfError> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(k, (shape, data))| {
                (
                    k.clone(),
                    shape.clone(),
                    data.iter().flat_map(|f| f.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = bytes.iter().map(|(k, shape, data)| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                .expect("sizes match");
            (k.clone(), view)
        });
        let out = safetensors::serialize(views, metadata).map_err(|e| HfError::Format {
            path: path.into(),
            reason: e.to_string(),
        })?;
        crate::checkpoint::atomic_write(path, &out).map_err(|source| HfError::Io {
            path: path.into(),
            source,
        })
    }
}

struct Collector<'a> {
    writer: &'a mut WeightWriter,
}

impl Collector<'_> {
    fn put<B: Backend, const D: usize>(&mut self, key: &str, layout: Layout, t: Tensor<B, D>) {
        let shape = t.dims().to_vec();
        let data = t.into_data().convert::<f32>().to_vec().expect("f32");
        self.writer.put(key, layout, &shape, data);
    }
}

impl<B: Backend> ParamVisitor<B> for Collector<'_> {
    fn visit1(&mut self, key: &str, layout: Layout, param: &mut Param<Tensor<B, 1>>) {
        self.put(key, layout, param.val());
    }

    fn visit2(&mut self, key: &str, layout: Layout, param: &mut Param<Tensor<B, 2>>) {
        self.put(key, layout, param.val());
    }
}
