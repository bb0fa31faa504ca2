//! Batches by step number, cut into burn-train epochs of `checkpoint_every` steps.
//!
//! burn-train checkpoints at the end of an epoch and resumes at an epoch boundary. Our runs are
//! counted in optimizer steps, so a burn-train "epoch" here is one *chunk* of
//! `steps_per_chunk` steps (the checkpoint interval), and the batch of every step is built by a
//! [`BatchSource`] from the step number alone. A run resumed from chunk `k` therefore sees
//! exactly the batches the uninterrupted run would have seen.
//!
//! On several devices burn-train splits a loader with [`DataLoader::slice`]; a slice of a
//! [`StepLoader`] is a [`Share`] of every step's batch (device `i` of `n` builds rows
//! `[i * batch / n, (i + 1) * batch / n)`), so one step on `n` devices covers the same samples
//! as one step on one device.

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor};

/// Which part of each step's batch one device builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// This device's position among the devices.
    pub index: usize,
    /// Number of devices the batch is split over.
    pub count: usize,
}

impl Share {
    /// The whole batch (one device).
    pub const WHOLE: Share = Share { index: 0, count: 1 };

    /// The rows of a batch of `batch_size` that belong to this share.
    pub fn rows(&self, batch_size: usize) -> Range<usize> {
        batch_size * self.index / self.count..batch_size * (self.index + 1) / self.count
    }
}

/// Where a batch sits in the run: its step, this device's share, the whole step's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepInfo {
    /// The step (0-based).
    pub step: usize,
    /// This device's share of the step's batch.
    pub share: Share,
    /// Samples in the whole step (all shares).
    pub batch_size: usize,
}

impl StepInfo {
    /// Samples in this share.
    pub fn rows(&self) -> usize {
        self.share.rows(self.batch_size).len()
    }

    /// This share's fraction of the step's batch: the weight of its mean loss, so that the
    /// gradients of all shares sum to the whole batch's.
    pub fn weight(&self) -> f64 {
        self.rows() as f64 / self.batch_size.max(1) as f64
    }

    /// The [`StepOutput`](super::StepOutput) of this share with mean loss `loss`.
    pub fn output(&self, loss: f64) -> super::StepOutput {
        super::StepOutput::new(self.step, self.share, self.rows(), loss)
    }

    /// The cross-entropy of a classifier's `logits` `[rows, classes]` against class indices
    /// `targets`, and this share's output with the loss and `accuracy` (the fraction of rows
    /// whose top logit is the target).
    pub fn classification<B: Backend>(
        &self,
        logits: Tensor<B, 2>,
        targets: Tensor<B, 1, Int>,
    ) -> (Tensor<B, 1>, super::StepOutput) {
        let correct: i64 = logits
            .clone()
            .argmax(1)
            .squeeze_dim::<1>(1)
            .equal(targets.clone())
            .int()
            .sum()
            .into_scalar()
            .elem();
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, targets);
        let out = self
            .output(loss.clone().into_scalar().elem())
            .with("accuracy", correct as f64 / self.rows().max(1) as f64);
        (loss, out)
    }
}

/// Builds the batch of any step; the one thing a model supplies to feed the training loop.
pub trait BatchSource<B: Backend>: Send + Sync + 'static {
    /// What the model's train step takes.
    type Batch: Send + 'static;
    /// Samples per step (all devices together).
    fn batch_size(&self) -> usize;
    /// This device's share of the batch of step `at.step` (0-based), on `device`. Must depend
    /// only on its arguments (seed everything from the step), so a resumed run repeats the
    /// same batches.
    fn batch(&self, at: StepInfo, device: &B::Device) -> Self::Batch;
}

/// A burn-train [`DataLoader`] that yields one chunk of steps per epoch.
pub struct StepLoader<B: Backend, S: BatchSource<B>> {
    source: Arc<S>,
    total_steps: usize,
    steps_per_chunk: usize,
    next_chunk: AtomicUsize,
    share: Share,
    device: B::Device,
}

impl<B: Backend, S: BatchSource<B>> StepLoader<B, S> {
    /// A loader over steps `0..total_steps` in chunks of `steps_per_chunk`, whose first
    /// [`iter`](DataLoader::iter) yields chunk `first_chunk` (0-based; non-zero on resume).
    pub fn new(
        source: Arc<S>,
        total_steps: usize,
        steps_per_chunk: usize,
        first_chunk: usize,
        device: B::Device,
    ) -> Self {
        Self {
            source,
            total_steps,
            steps_per_chunk: steps_per_chunk.max(1),
            next_chunk: AtomicUsize::new(first_chunk),
            share: Share::WHOLE,
            device,
        }
    }

    fn chunk_steps(&self, chunk: usize) -> Range<usize> {
        let start = (chunk * self.steps_per_chunk).min(self.total_steps);
        start..(start + self.steps_per_chunk).min(self.total_steps)
    }

    fn with(&self, share: Share, device: B::Device) -> Self {
        Self {
            source: self.source.clone(),
            total_steps: self.total_steps,
            steps_per_chunk: self.steps_per_chunk,
            next_chunk: AtomicUsize::new(self.next_chunk.load(Ordering::SeqCst)),
            share,
            device,
        }
    }
}

struct StepIter<'a, B: Backend, S: BatchSource<B>> {
    loader: &'a StepLoader<B, S>,
    steps: Range<usize>,
    done: usize,
}

impl<B: Backend, S: BatchSource<B>> Iterator for StepIter<'_, B, S> {
    type Item = S::Batch;

    fn next(&mut self) -> Option<S::Batch> {
        let step = self.steps.start + self.done;
        if step >= self.steps.end {
            return None;
        }
        self.done += 1;
        let l = self.loader;
        let at = StepInfo {
            step,
            share: l.share,
            batch_size: l.source.batch_size(),
        };
        Some(l.source.batch(at, &l.device))
    }
}

impl<B: Backend, S: BatchSource<B>> DataLoaderIterator<S::Batch> for StepIter<'_, B, S> {
    fn progress(&self) -> Progress {
        let rows = self
            .loader
            .share
            .rows(self.loader.source.batch_size())
            .len();
        Progress::new(self.done * rows, self.steps.len() * rows)
    }
}

impl<B: Backend, S: BatchSource<B>> DataLoader<B, S::Batch> for StepLoader<B, S> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<S::Batch> + 'a> {
        let chunk = self.next_chunk.fetch_add(1, Ordering::SeqCst);
        Box::new(StepIter {
            loader: self,
            steps: self.chunk_steps(chunk),
            done: 0,
        })
    }

    fn num_items(&self) -> usize {
        let chunk = self.next_chunk.load(Ordering::SeqCst);
        self.chunk_steps(chunk).len() * self.share.rows(self.source.batch_size()).len()
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, S::Batch>> {
        Arc::new(self.with(self.share, device.clone()))
    }

    /// burn-train's `split_dataloader` asks for `[start, end)` of `num_items`; that fraction
    /// becomes the same fraction of every step's batch.
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, S::Batch>> {
        let total = self.num_items().max(1);
        let count = (total as f64 / (end - start).max(1) as f64)
            .round()
            .max(1.0) as usize;
        let index = ((start * count) as f64 / total as f64).round() as usize;
        let share = Share {
            index: index.min(count - 1),
            count,
        };
        Arc::new(self.with(share, self.device.clone()))
    }
}

/// A loader with nothing in it: the validation loader of runs that evaluate after training.
pub struct EmptyLoader<T>(PhantomData<fn() -> T>);

impl<T> Default for EmptyLoader<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<B: Backend, T: Send + 'static> DataLoader<B, T> for EmptyLoader<T> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<T> + 'a> {
        Box::new(NoItems::<T>(PhantomData))
    }

    fn num_items(&self) -> usize {
        0
    }

    fn to_device(&self, _device: &B::Device) -> Arc<dyn DataLoader<B, T>> {
        Arc::new(Self::default())
    }

    fn slice(&self, _start: usize, _end: usize) -> Arc<dyn DataLoader<B, T>> {
        Arc::new(Self::default())
    }
}

struct NoItems<T>(PhantomData<fn() -> T>);

impl<T> Iterator for NoItems<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        None
    }
}

impl<T> DataLoaderIterator<T> for NoItems<T> {
    fn progress(&self) -> Progress {
        Progress::new(0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::backend::ndarray::NdArrayDevice;

    struct Steps;

    impl BatchSource<NdArray> for Steps {
        type Batch = (usize, Range<usize>);
        fn batch_size(&self) -> usize {
            4
        }
        fn batch(&self, at: StepInfo, _device: &NdArrayDevice) -> Self::Batch {
            (at.step, at.share.rows(4))
        }
    }

    fn loader(first_chunk: usize) -> StepLoader<NdArray, Steps> {
        StepLoader::new(Arc::new(Steps), 7, 3, first_chunk, Default::default())
    }

    #[test]
    fn each_epoch_is_the_next_chunk_of_steps() {
        let l = loader(0);
        let chunks: Vec<Vec<usize>> = (0..3).map(|_| l.iter().map(|(s, _)| s).collect()).collect();
        assert_eq!(chunks, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        let resumed: Vec<usize> = loader(1).iter().map(|(s, _)| s).collect();
        assert_eq!(resumed, vec![3, 4, 5]);
    }

    #[test]
    fn slices_split_every_batch_between_devices() {
        let l = loader(0);
        let parts = burn::data::dataloader::split::split_dataloader(
            l.to_device(&NdArrayDevice::Cpu),
            &[NdArrayDevice::Cpu, NdArrayDevice::Cpu],
        );
        let rows: Vec<_> = parts.iter().map(|p| p.iter().next().unwrap()).collect();
        assert_eq!(rows, vec![(0, 0..2), (0, 2..4)]);
    }
}
