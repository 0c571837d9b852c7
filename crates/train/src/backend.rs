//! The compute backend, chosen at run time.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, clap::ValueEnum,
)]
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
            BackendKind::Wgpu if !cfg!(feature = "wgpu") => Err(TrainError::Backend(
                "this thaw was built without the GPU backend; rebuild with `cargo build --release --features wgpu`".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// The machine a sweep ran on, as the report states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    pub cpu: String,
    pub cores: usize,
    pub backend: BackendKind,
}

impl Hardware {
    /// This machine's CPU model (from /proc/cpuinfo where there is one) and usable cores.
    pub fn probe(backend: BackendKind) -> Hardware {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|name| name.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Hardware { cpu, cores, backend }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        BackendKind::ALL.into_iter().find(|b| b.as_str() == s).ok_or_else(|| {
            TrainError::Invalid(format!("unknown backend '{s}'; choose flex, ndarray or wgpu"))
        })
    }
}
