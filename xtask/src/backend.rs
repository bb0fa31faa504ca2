//! Which backends this binary runs its commands on: the ones *its own* features enable.
//!
//! Every command is generic over the backend, so each backend compiled into the binary costs
//! one more instantiation of every model and training loop: the GPU backends (wgpu and CUDA,
//! with Burn's fusion and CubeCL stacks) cost the most, about 11 of the 19 minutes that the
//! binary took to build on two cores with all four backends (8 with Flex and ndarray alone).
//! `mm_core::dispatch` picks among the backends compiled into `mm-core`, which are the union
//! of what every crate in a build asks for; here a build that enables the GPU backends for the
//! libraries and their tests (the README's test command) but not for this binary compiles the
//! commands for the CPU only, and `--device wgpu` then names the feature to rebuild with.

use mm_core::{BackendJob, DeviceError, DeviceSpec};

/// Runs `job` on the backend that `spec` names, if this binary was built with its feature.
///
/// With a GPU feature of this binary on (`--features wgpu` or `cuda`), this is
/// `mm_core::dispatch` and runs on every backend compiled into `mm-core`.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub fn dispatch<J: BackendJob>(spec: DeviceSpec, job: J) -> Result<J::Output, DeviceError> {
    mm_core::dispatch(spec, job)
}

/// Runs `job` on the backend that `spec` names, if this binary was built with its feature.
///
/// Without a GPU feature of this binary, only the CPU backends it enables run; the GPU
/// devices are an error that names the feature, whatever `mm-core` was compiled with.
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
pub fn dispatch<J: BackendJob>(spec: DeviceSpec, job: J) -> Result<J::Output, DeviceError> {
    match spec {
        #[cfg(feature = "flex")]
        DeviceSpec::Cpu => {
            Ok(job.run::<burn::backend::Autodiff<burn::backend::Flex>>(Default::default()))
        }
        #[cfg(feature = "ndarray")]
        DeviceSpec::NdArray => {
            Ok(job.run::<burn::backend::Autodiff<burn::backend::NdArray>>(Default::default()))
        }
        other => Err(DeviceError::NotCompiled {
            device: other,
            feature: match other {
                DeviceSpec::Cpu => "flex",
                DeviceSpec::NdArray => "ndarray",
                DeviceSpec::Wgpu(_) => "wgpu",
                DeviceSpec::Cuda(_) => "cuda",
            },
        }),
    }
}
