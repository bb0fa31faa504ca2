//! HuggingFace weights in and out, for parameters of any rank.
//!
//! Each model declares its key table once, as an [`HfParams::visit_hf`] implementation that names
//! every parameter's HF key and layout ([`Layout`]). The same table drives loading
//! ([`WeightMap`], strict: a missing or unexpected key, or a shape that disagrees with the
//! config, is an error naming it) and exporting ([`WeightWriter`]). [`layers`] holds the tables
//! of Burn's own layers (linear, norms, embeddings, 1-D/2-D/3-D convolutions, LSTM) under
//! PyTorch's names, so a model's table is mostly a list of prefixes. [`files`] reads the weight
//! files of a folder in every form the hub has them (single, sharded, PyTorch `.bin`).

mod export;
pub mod files;
pub mod layers;
mod load;

pub use export::WeightWriter;
pub use files::{WEIGHT_FILES, find_weights};
pub use load::WeightMap;

use std::path::PathBuf;

use burn::module::{Param, RunningState};
use burn::tensor::{Tensor, TensorData, backend::Backend};

/// How an HF tensor relates to ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Same shape, same order (embeddings, norms, biases, conv kernels of any rank).
    Same,
    /// HF `[out, in]` (a `torch.nn.Linear` weight) against our `[in, out]`.
    Transposed,
    /// HF `[out, channels, k, k]` (a patch `Conv2d` with stride = kernel) against our
    /// `[channels * k * k, out]` patch projection.
    ConvAsLinear,
    /// HF scalar `[]` against our `[1]`.
    Scalar,
    /// Ours is block `index` of `of` equal blocks along dim 0 of the HF tensor, e.g. one gate
    /// of PyTorch's fused LSTM `weight_ih_l0` (`[4 * hidden, in]`, gates i, f, g, o).
    /// `transposed`: the block is a Linear weight, HF `[out, in]` against our `[in, out]`.
    Chunk {
        /// Which block, from 0.
        index: usize,
        /// How many blocks the HF tensor holds.
        of: usize,
        /// Whether the block is transposed relative to ours.
        transposed: bool,
    },
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

/// One parameter (or running statistic) of any rank, seen as flat f32 data and a shape.
pub trait ParamSlot<B: Backend> {
    /// Its shape.
    fn shape(&self) -> Vec<usize>;
    /// Its values, row-major.
    fn values(&self) -> Vec<f32>;
    /// Replaces its values (same shape) with `data`, on `device`.
    fn replace(&mut self, data: Vec<f32>, device: &B::Device);
}

/// A tensor's values as f32, row-major.
fn tensor_values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32")
}

/// A tensor of `shape` holding `data`, on `device`.
fn tensor_from<B: Backend, const D: usize>(
    data: Vec<f32>,
    shape: Vec<usize>,
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

impl<B: Backend, const D: usize> ParamSlot<B> for Param<Tensor<B, D>> {
    fn shape(&self) -> Vec<usize> {
        self.val().dims().to_vec()
    }

    fn values(&self) -> Vec<f32> {
        tensor_values(self.val())
    }

    fn replace(&mut self, data: Vec<f32>, device: &B::Device) {
        let shape = ParamSlot::<B>::shape(self);
        *self = Param::from_tensor(tensor_from(data, shape, device));
    }
}

impl<B: Backend, const D: usize> ParamSlot<B> for RunningState<Tensor<B, D>> {
    fn shape(&self) -> Vec<usize> {
        self.value().dims().to_vec()
    }

    fn values(&self) -> Vec<f32> {
        tensor_values(self.value())
    }

    fn replace(&mut self, data: Vec<f32>, device: &B::Device) {
        let shape = ParamSlot::<B>::shape(self);
        *self = RunningState::new(tensor_from(data, shape, device));
    }
}

/// Something that walks a model's parameters with their HF keys.
pub trait ParamVisitor<B: Backend> {
    /// One parameter, of any rank, stored under `key` in HF layout `layout`.
    fn visit(&mut self, key: &str, layout: Layout, param: &mut dyn ParamSlot<B>);
}

/// A model (or part) whose parameters have HF keys: its key table.
pub trait HfParams<B: Backend> {
    /// Visits every parameter, keys prefixed with `prefix` (e.g. `text_model.`).
    fn visit_hf(&mut self, prefix: &str, visitor: &mut dyn ParamVisitor<B>);
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
        Layout::Chunk { of, transposed, .. } => {
            let mut block = if transposed {
                vec![ours[1], ours[0]]
            } else {
                ours.to_vec()
            };
            block[0] *= of;
            block
        }
    }
}

/// Our-layout data of a parameter shaped `ours` from the whole HF tensor `hf`.
fn from_hf(layout: Layout, ours: &[usize], hf: &[f32]) -> Vec<f32> {
    match layout {
        Layout::Same | Layout::Scalar => hf.to_vec(),
        // HF [out, in...] flattened to [out, in] -> ours [in, out].
        Layout::Transposed | Layout::ConvAsLinear => transpose(hf, ours[1], ours[0]),
        Layout::Chunk {
            index, transposed, ..
        } => {
            let n: usize = ours.iter().product();
            let block = &hf[index * n..(index + 1) * n];
            if transposed {
                transpose(block, ours[1], ours[0])
            } else {
                block.to_vec()
            }
        }
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
