//! `--device` dispatch: every compiled backend runs a job, and a GPU backend without a GPU is a
//! clear error rather than a panic.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use mm_core::{BackendJob, DeviceSpec, dispatch};

struct Dot;

impl BackendJob for Dot {
    type Output = f32;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> f32 {
        let a = Tensor::<B, 1>::from_floats([1.0, 2.0, 3.0], &device);
        (a.clone() * a).sum().into_scalar().elem()
    }
}

#[test]
fn cpu_backends_run_jobs() {
    assert_eq!(dispatch(DeviceSpec::Cpu, Dot).unwrap(), 14.0);
    #[cfg(feature = "ndarray")]
    assert_eq!(dispatch(DeviceSpec::NdArray, Dot).unwrap(), 14.0);
}

/// With the `cuda` feature: on a machine with a GPU the job runs; without one the error says
/// which device is unavailable.
#[cfg(feature = "cuda")]
#[test]
fn cuda_runs_or_reports_a_clear_error() {
    // Runs the job on the GPU, or checks the error that names the missing device.
    cuda_device();
}

/// CUDA device 0 when this machine has a GPU. Without one, checks that asking for it is the
/// clear "not available" error (so the CUDA tests still test something in CI) and returns
/// `None`: the caller's GPU comparison is then not run, and says so on stderr.
#[cfg(feature = "cuda")]
pub fn cuda_device() -> Option<burn::backend::cuda::CudaDevice> {
    match dispatch(DeviceSpec::Cuda(0), Dot) {
        Ok(v) => {
            assert_eq!(v, 14.0);
            Some(burn::backend::cuda::CudaDevice::new(0))
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("cuda:0") && msg.contains("not available"),
                "{msg}"
            );
            eprintln!("no CUDA device here ({msg}): the comparison on CUDA was not run");
            None
        }
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_names_the_feature() {
    let msg = dispatch(DeviceSpec::Cuda(0), Dot).unwrap_err().to_string();
    assert!(msg.contains("--features cuda"), "{msg}");
}
