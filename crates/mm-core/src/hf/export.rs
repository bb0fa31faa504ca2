//! Exporting: a model's parameters written under their HF keys through its key table.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use safetensors::Dtype;

use super::{HfError, HfParams, Layout, ParamSlot, ParamVisitor, hf_shape, transpose};

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

    /// Collects the parameters of a model held by reference: it is materialized first (see
    /// [`materialize`](crate::nn::materialize)), so the file holds the values it computes with.
    pub fn collect_module<B: Backend, M: HfParams<B> + Module<B>>(
        &mut self,
        model: &M,
        prefix: &str,
    ) {
        crate::nn::materialize(model);
        self.collect(&mut model.clone(), prefix);
    }

    /// Puts one parameter of our shape `ours` (values `data`) under `key` in HF layout.
    fn put(&mut self, key: &str, layout: Layout, ours: &[usize], data: Vec<f32>) {
        let shape = hf_shape(layout, ours, self.conv_channels);
        match layout {
            Layout::Same | Layout::Scalar => {
                self.tensors.insert(key.to_string(), (shape, data));
            }
            Layout::Transposed | Layout::ConvAsLinear => {
                let data = transpose(&data, ours[0], ours[1]);
                self.tensors.insert(key.to_string(), (shape, data));
            }
            Layout::Chunk {
                index, transposed, ..
            } => {
                let block = if transposed {
                    transpose(&data, ours[0], ours[1])
                } else {
                    data
                };
                let total = shape.iter().product();
                let (_, whole) = self
                    .tensors
                    .entry(key.to_string())
                    .or_insert_with(|| (shape, vec![0.0; total]));
                let n = block.len();
                whole[index * n..(index + 1) * n].copy_from_slice(&block);
            }
        }
    }

    /// Writes the collected tensors (plus `metadata`) as a safetensors file, atomically.
    pub fn write(
        &self,
        path: &Path,
        metadata: Option<HashMap<String, String>>,
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
        mm_data::fs::atomic_write(path, &out).map_err(|source| HfError::Io {
            path: path.into(),
            source,
        })
    }
}

struct Collector<'a> {
    writer: &'a mut WeightWriter,
}

impl<B: Backend> ParamVisitor<B> for Collector<'_> {
    fn visit(&mut self, key: &str, layout: Layout, param: &mut dyn ParamSlot<B>) {
        self.writer.put(key, layout, &param.shape(), param.values());
    }
}
