//! `cargo xtask cca --x FILE --y FILE -k K [--ridge R] [--save-projections DIR]`: linear CCA of
//! two matrices (`.npy` float32/float64 or CSV, rows are samples); prints
//! `{"correlations": [...]}`.

use std::path::PathBuf;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_core::cca::covariance::to_device;
use mm_core::cca::{Cca, CcaError, LinearCcaConfig};
use mm_data::matrix::{HostMatrix, read_matrix};

/// Flags of `cca`.
#[derive(Args)]
pub struct CcaArgs {
    /// First view: `.npy` (float32 or float64) or CSV, one sample per row.
    #[arg(long)]
    x: PathBuf,
    /// Second view, same rows as `--x`.
    #[arg(long)]
    y: PathBuf,
    /// Canonical pairs to compute.
    #[arg(short = 'k', long)]
    k: usize,
    /// Ridge added to both auto-covariance diagonals (0: classical CCA).
    #[arg(long, default_value_t = 0.0)]
    ridge: f64,
    /// Also write wx.npy, wy.npy, mean_x.npy, mean_y.npy and correlations.json here.
    #[arg(long)]
    save_projections: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct CcaJob {
    x: HostMatrix,
    y: HostMatrix,
    config: LinearCcaConfig,
}

impl BackendJob for CcaJob {
    type Output = Result<Cca, CcaError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let x = to_device::<B::InnerBackend>(&self.x, &device);
        let y = to_device::<B::InnerBackend>(&self.y, &device);
        self.config.fit(x, y)
    }
}

/// Runs `cca`.
pub fn run(args: CcaArgs) -> Result<()> {
    let x = read_matrix(&args.x)?;
    let y = read_matrix(&args.y)?;
    let device = args.device.device;
    let config = LinearCcaConfig::new(args.k).with_ridge(args.ridge);
    let cca = dispatch(device, CcaJob { x, y, config })?
        .with_context(|| format!("CCA of {} and {}", args.x.display(), args.y.display()))?;
    if let Some(dir) = &args.save_projections {
        cca.save(dir)?;
        eprintln!("wrote projections to {}", dir.display());
    }
    println!(
        "{}",
        serde_json::json!({ "correlations": cca.correlations })
    );
    Ok(())
}
