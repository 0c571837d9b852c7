//! The compute backend, chosen at run time.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WorkerError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn-flex: burn 0.22's CPU backend, the faster one on the CPUs measured (see the README's benchmark).
    #[default]
    Flex,
    /// burn-ndarray: the original CPU backend.
    Ndarray,
    /// burn-wgpu: GPU through Vulkan/Metal/DX12; needs the `wgpu` cargo feature.
    Wgpu,
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [BackendKind::Flex, BackendKind::Ndarray, BackendKind::Wgpu];

    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
        }
    }

    /// The plain (inference) device; training uses `.autodiff()` of it.
    pub fn device(self) -> Result<Device> {
        match self {
            BackendKind::Flex => Ok(Device::flex()),
            #[allow(deprecated)]
            BackendKind::Ndarray => Ok(Device::ndarray()),
            BackendKind::Wgpu => wgpu_device(),
        }
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device> {
    BackendKind::Wgpu.check_built().map(|_| unreachable!("checked above"))
}

impl BackendKind {
    /// Whether this build contains the backend, checked before a sweep is registered so a
    /// missing feature is one clear error, not a failed job per job. A GPU that exists in the
    /// build but fails to start is found by the first job.
    pub fn check_built(self) -> Result<()> {
        match self {
            BackendKind::Wgpu if !cfg!(feature = "wgpu") => Err(WorkerError::Backend(
                "this thaw was built without the GPU backend; rebuild with `cargo build --release --features wgpu`".into(),
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = WorkerError;
    fn from_str(s: &str) -> Result<Self> {
        BackendKind::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| WorkerError::Invalid(format!("unknown backend '{s}'; choose flex, ndarray or wgpu")))
    }
}
