//! Loading: a weight file's tensors handed to a model through its key table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

use super::{
    HfError, HfParams, Layout, ParamSlot, ParamVisitor, files, find_weights, from_hf, hf_shape,
};

/// The tensors of a weight file, as f32, with the keys not yet taken.
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
    /// Reads the weights of the HF folder `dir`, whichever of [`super::WEIGHT_FILES`] it has
    /// (the first in that order). `ignore` as for [`Self::open`].
    pub fn open_folder(dir: &Path, ignore: &[&str], device: &B::Device) -> Result<Self, HfError> {
        Self::open(&find_weights(dir)?, ignore, device)
    }

    /// Reads a weight file: `.safetensors`, a shard index (`*.index.json`) or a PyTorch
    /// checkpoint (`.bin`). `ignore` lists key suffixes that are buffers, not weights (e.g.
    /// `position_ids`, a batch norm's `num_batches_tracked`), and may be present or not.
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
            if !self.missing.iter().any(|k| k == key) {
                self.missing.push(key.to_string());
            }
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
        Some(from_hf(layout, ours, data))
    }
}

impl<B: Backend> ParamVisitor<B> for WeightMap<B> {
    fn visit(&mut self, key: &str, layout: Layout, param: &mut dyn ParamSlot<B>) {
        if let Some(data) = self.take(key, layout, &param.shape()) {
            param.replace(data, &self.device);
        }
    }
}
