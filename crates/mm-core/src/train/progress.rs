//! The progress display of a run, which suits a terminal and a CI log alike:
//! [`ProgressRenderer`] replaces burn-train's renderers (its TUI takes over the screen, its
//! plain renderer prints a debug struct per step) with a progress bar on a terminal and a
//! plain line every `log_every` steps otherwise; [`NoEpochLogs`] stands in for its per-epoch
//! log files.

use std::io::IsTerminal;

use burn_train::logger::MetricLogger;
use burn_train::metric::MetricDefinition;
use burn_train::metric::NumericEntry;
use burn_train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn_train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::log::RunLog;

/// A progress bar on a terminal; on a pipe (CI logs) a plain line every `log_every` steps.
pub struct ProgressRenderer {
    log: RunLog,
    bar: ProgressBar,
    terminal: bool,
    log_every: usize,
    shown: usize,
}

impl ProgressRenderer {
    /// Shows the steps of `log` out of `total_steps`, starting at `start_step`.
    pub fn new(log: RunLog, start_step: usize, total_steps: usize, log_every: usize) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar =
            ProgressBar::with_draw_target(Some(total_steps as u64), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
                    )
                    .expect("valid template"),
                );
        bar.set_position(start_step as u64);
        bar.reset_eta();
        Self {
            log,
            bar,
            terminal,
            log_every: log_every.max(1),
            shown: start_step,
        }
    }
}

impl MetricsRendererTraining for ProgressRenderer {
    fn update_train(&mut self, _state: MetricState) {}

    fn update_valid(&mut self, _state: MetricState) {}

    fn render_train(&mut self, _item: TrainingProgress, _indicators: Vec<ProgressType>) {
        let Some(r) = self.log.latest() else { return };
        if r.step == self.shown {
            return;
        }
        self.shown = r.step;
        self.bar.set_position(r.step as u64);
        self.bar.set_message(r.summary());
        let total = self.bar.length().unwrap_or(0) as usize;
        if !self.terminal && (r.step.is_multiple_of(self.log_every) || r.step == total) {
            println!("step {}/{}  {}", r.step, total, r.summary());
        }
    }

    fn render_valid(&mut self, _item: TrainingProgress, _indicators: Vec<ProgressType>) {}

    fn on_train_end(
        &mut self,
        _summary: Option<burn_train::LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        self.bar.finish();
        Ok(())
    }
}

impl MetricsRendererEvaluation for ProgressRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
    fn render_test(&mut self, _item: EvaluationProgress, _indicators: Vec<ProgressType>) {}
}

impl MetricsRenderer for ProgressRenderer {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

/// Stands in for burn-train's per-epoch log files (`metrics.jsonl` is the run's log).
pub struct NoEpochLogs;

impl MetricLogger for NoEpochLogs {
    fn log(&mut self, _update: MetricsUpdate, _epoch: usize, _split: &Split) {}

    fn read_numeric(
        &mut self,
        _name: &str,
        _epoch: usize,
        _split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        Ok(Vec::new())
    }

    fn log_metric_definition(&mut self, _definition: MetricDefinition) {}

    fn log_epoch_summary(&mut self, _summary: EpochSummary) {}
}
