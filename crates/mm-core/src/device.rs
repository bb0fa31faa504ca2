//! Turning a `--device` flag into a Burn backend and device.
//!
//! Library code never names a backend. Binaries and tests describe their work as a
//! [`BackendJob`] (a generic `run::<B>()`), and [`dispatch`] is the single `match` that picks
//! the concrete backend for a [`DeviceSpec`]. Training needs gradients, so every job runs on
//! `Autodiff<B>`; inference code calls `model.valid()` to drop to the inner backend.

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::backend::{DeviceId, DeviceOps};

/// A parsed `--device` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The default CPU backend (`flex`).
    Cpu,
    /// The `ndarray` CPU backend, kept as a numeric reference.
    NdArray,
    /// The `wgpu` backend: `None` picks wgpu's default adapter, `Some(n)` the n-th discrete GPU.
    Wgpu(Option<usize>),
    /// The CUDA backend on the given device index.
    Cuda(usize),
}

/// Why a device could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The flag did not parse.
    #[error("unknown device `{0}`: expected cpu, ndarray, wgpu, wgpu:N, cuda or cuda:N")]
    Unknown(String),
    /// The backend exists but this binary was built without its cargo feature.
    #[error(
        "device `{device}` needs the `{feature}` cargo feature; rebuild with `--features {feature}`"
    )]
    NotCompiled {
        /// The requested device.
        device: DeviceSpec,
        /// The feature that enables it.
        feature: &'static str,
    },
    /// The backend is compiled in but the device could not be opened.
    #[error("device `{device}` is not available: {reason}")]
    Unavailable {
        /// The requested device.
        device: DeviceSpec,
        /// What the backend reported.
        reason: String,
    },
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::NdArray => write!(f, "ndarray"),
            DeviceSpec::Wgpu(None) => write!(f, "wgpu"),
            DeviceSpec::Wgpu(Some(n)) => write!(f, "wgpu:{n}"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, index) = match lower.split_once(':') {
            Some((name, idx)) => {
                let idx = idx
                    .parse::<usize>()
                    .map_err(|_| DeviceError::Unknown(s.to_string()))?;
                (name.to_string(), Some(idx))
            }
            None => (lower.clone(), None),
        };
        match (name.as_str(), index) {
            ("cpu" | "flex", None) => Ok(DeviceSpec::Cpu),
            ("ndarray", None) => Ok(DeviceSpec::NdArray),
            ("wgpu", idx) => Ok(DeviceSpec::Wgpu(idx)),
            ("cuda", idx) => Ok(DeviceSpec::Cuda(idx.unwrap_or(0))),
            _ => Err(DeviceError::Unknown(s.to_string())),
        }
    }
}

/// Work that is generic over the backend: the `run::<B>()` that [`dispatch`] calls.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` and `device`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output;
}

/// Runs `job` on the backend named by `spec`.
///
/// Errors when the backend was not compiled in, or when its device cannot be opened (no GPU,
/// no driver, no Vulkan adapter); the backend's own panic on a missing device is caught and
/// turned into [`DeviceError::Unavailable`].
pub fn dispatch<J: BackendJob>(spec: DeviceSpec, job: J) -> Result<J::Output, DeviceError> {
    match spec {
        DeviceSpec::Cpu => {
            #[cfg(feature = "flex")]
            {
                type B = burn::backend::Autodiff<burn::backend::Flex>;
                Ok(job.run::<B>(Default::default()))
            }
            #[cfg(not(feature = "flex"))]
            {
                let _ = job;
                Err(DeviceError::NotCompiled {
                    device: spec,
                    feature: "flex",
                })
            }
        }
        DeviceSpec::NdArray => {
            #[cfg(feature = "ndarray")]
            {
                type B = burn::backend::Autodiff<burn::backend::NdArray>;
                Ok(job.run::<B>(Default::default()))
            }
            #[cfg(not(feature = "ndarray"))]
            {
                let _ = job;
                Err(DeviceError::NotCompiled {
                    device: spec,
                    feature: "ndarray",
                })
            }
        }
        DeviceSpec::Wgpu(index) => {
            #[cfg(feature = "wgpu")]
            {
                use burn::backend::wgpu::WgpuDevice;
                type B = burn::backend::Autodiff<burn::backend::Wgpu>;
                let device = match index {
                    None => WgpuDevice::DefaultDevice,
                    Some(n) => WgpuDevice::DiscreteGpu(n),
                };
                probe::<B>(spec, &device)?;
                Ok(job.run::<B>(device))
            }
            #[cfg(not(feature = "wgpu"))]
            {
                let _ = (job, index);
                Err(DeviceError::NotCompiled {
                    device: spec,
                    feature: "wgpu",
                })
            }
        }
        DeviceSpec::Cuda(index) => {
            #[cfg(feature = "cuda")]
            {
                use burn::backend::cuda::CudaDevice;
                type B = burn::backend::Autodiff<burn::backend::Cuda>;
                let device = CudaDevice::new(index);
                probe::<B>(spec, &device)?;
                Ok(job.run::<B>(device))
            }
            #[cfg(not(feature = "cuda"))]
            {
                let _ = (job, index);
                Err(DeviceError::NotCompiled {
                    device: spec,
                    feature: "cuda",
                })
            }
        }
    }
}

/// `count` devices of `first`'s kind from `first`'s index on (`cuda:0` and 2: `cuda:0`,
/// `cuda:1`), for data-parallel training. CPU backends have one device: their replicas are the
/// same device, trained on by one worker thread each.
pub fn replicas<D: DeviceOps>(first: &D, count: usize) -> Vec<D> {
    let id = first.to_id();
    (0..count.max(1))
        .map(|i| match i {
            0 => first.clone(),
            _ => D::from_id(DeviceId {
                type_id: id.type_id,
                index_id: id.index_id + i as u16,
            }),
        })
        .collect()
}

/// Opens `device` by running one tiny op on it, turning the backend's panic into an error.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn probe<B: AutodiffBackend>(spec: DeviceSpec, device: &B::Device) -> Result<(), DeviceError> {
    use burn::tensor::Tensor;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let device = device.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let t = Tensor::<B, 1>::ones([2], &device);
        t.sum().into_scalar();
    }));
    std::panic::set_hook(previous);
    result.map_err(|payload| DeviceError::Unavailable {
        device: spec,
        reason: panic_message(payload.as_ref()),
    })
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the backend failed to initialize".to_string()
    }
}

// `dispatch` itself is tested in the workspace's `backends` binary (tests/tests/backends/
// devices.rs): a job dispatched here would instantiate every compiled backend (wgpu and CUDA
// fusion included) in this crate's unit-test harness too, a second copy of that compile.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!(
            "ndarray".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::NdArray
        );
        assert_eq!(
            "wgpu".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::Wgpu(None)
        );
        assert_eq!(
            "wgpu:1".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::Wgpu(Some(1))
        );
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("CUDA:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!("cpu:1".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn replicas_count_up_from_the_first_device() {
        use burn::backend::ndarray::NdArrayDevice;
        assert_eq!(
            replicas(&NdArrayDevice::Cpu, 2),
            vec![NdArrayDevice::Cpu; 2]
        );
        assert_eq!(replicas(&NdArrayDevice::Cpu, 0).len(), 1);
    }
}
