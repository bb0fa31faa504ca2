//! Linear warm-up then cosine decay to zero, as a burn [`LrScheduler`] (its record is the step,
//! so a resumed run continues the schedule where the checkpoint left it).

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::LrScheduler;
use burn::tensor::backend::Backend;

/// Warm-up + cosine learning-rate schedule over a fixed number of steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    /// Peak learning rate.
    pub peak: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Total steps of the run.
    pub total_steps: usize,
    step: usize,
}

impl WarmupCosine {
    /// A schedule at step 0.
    pub fn new(peak: f64, warmup_steps: usize, total_steps: usize) -> Self {
        Self {
            peak,
            warmup_steps,
            total_steps,
            step: 0,
        }
    }

    /// The learning rate of step `step` (0-based).
    pub fn at(&self, step: usize) -> f64 {
        let warm = self.warmup_steps.min(self.total_steps);
        if step < warm {
            return self.peak * (step + 1) as f64 / warm as f64;
        }
        let span = (self.total_steps - warm).max(1) as f64;
        let progress = ((step - warm) as f64 / span).min(1.0);
        self.peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

impl LrScheduler for WarmupCosine {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let lr = self.at(self.step);
        self.step += 1;
        lr
    }

    fn to_record<B: Backend>(&self) -> usize {
        self.step
    }

    fn load_record<B: Backend>(mut self, record: usize) -> Self {
        self.step = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    #[test]
    fn warms_up_then_decays_to_zero() {
        let s = WarmupCosine::new(1.0, 10, 100);
        assert!((s.at(0) - 0.1).abs() < 1e-12);
        assert!((s.at(9) - 1.0).abs() < 1e-12);
        assert!((s.at(10) - 1.0).abs() < 1e-12);
        assert!(s.at(55) < 0.51 && s.at(55) > 0.49);
        assert!(s.at(99) < 0.001);
    }

    #[test]
    fn a_reloaded_schedule_continues_where_it_stopped() {
        let mut a = WarmupCosine::new(1.0, 3, 20);
        for _ in 0..7 {
            a.step();
        }
        let record = LrScheduler::to_record::<NdArray>(&a);
        let mut b = WarmupCosine::new(1.0, 3, 20).load_record::<NdArray>(record);
        assert_eq!(a.step(), b.step());
        assert_eq!(b.step(), b.at(8));
    }
}
