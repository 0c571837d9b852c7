//! The compute backend, chosen at run time.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn-flex: burn 0.22's CPU backend, the faster one on the CPUs measured (see the README's benchmark).
    #[default]
    Flex,
    /// burn-ndarray: the original CPU backend; needs the `ndarray` cargo feature.
    Ndarray,
    /// burn-wgpu: GPU through Vulkan/Metal/DX12; needs the `wgpu` cargo feature.
    Wgpu,
    /// burn-cuda: NVIDIA GPUs through CUDA; needs the `cuda` cargo feature and, at run time,
    /// the NVIDIA driver (the CUDA toolkit is not needed to build).
    Cuda,
}

impl BackendKind {
    pub const ALL: [BackendKind; 4] =
        [BackendKind::Flex, BackendKind::Ndarray, BackendKind::Wgpu, BackendKind::Cuda];

    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// Whether the backend computes on an accelerator, where every read back to the host
    /// stalls the queue and tensors are best kept where they are.
    pub fn is_gpu(self) -> bool {
        matches!(self, BackendKind::Wgpu | BackendKind::Cuda)
    }

    /// Training steps between reads of the loss: every step on a CPU (free there, and the
    /// progress bar moves each step), every 16 on a GPU, so the device queue never drains.
    pub fn loss_read_interval(self) -> usize {
        if self.is_gpu() { 16 } else { 1 }
    }

    /// Batch size for inference (evaluation, frozen prefixes): twice the training batch on a
    /// CPU, where bigger batches buy nothing; on a GPU large batches without autodiff keep
    /// the device busy (at most 256, for memory).
    pub fn eval_batch_size(self, train_batch: usize) -> usize {
        if self.is_gpu() { (train_batch * 8).clamp(64, 256) } else { train_batch * 2 }
    }

    /// The plain (inference) device; training uses `.autodiff()` of it.
    pub fn device(self) -> Result<Device> {
        self.check_built()?;
        crate::memory::keep_freed_memory();
        match self {
            BackendKind::Flex => Ok(Device::flex()),
            BackendKind::Ndarray => ndarray(),
            BackendKind::Wgpu => gpu::wgpu(),
            BackendKind::Cuda => gpu::cuda(),
        }
    }

    /// Whether this build contains the backend, checked before a sweep is registered so a
    /// missing feature is one clear error, not a failed job per job. A GPU that exists in the
    /// build but fails to start is found by the first job.
    pub fn check_built(self) -> Result<()> {
        let missing = match self {
            BackendKind::Wgpu => !cfg!(feature = "wgpu"),
            BackendKind::Cuda => !cfg!(feature = "cuda"),
            BackendKind::Ndarray => !cfg!(feature = "ndarray"),
            BackendKind::Flex => false,
        };
        if missing {
            return Err(TrainError::Backend(format!(
                "this thaw was built without the {self} backend; rebuild with `cargo build --release --features {self}`"
            )));
        }
        Ok(())
    }
}

#[cfg(feature = "ndarray")]
fn ndarray() -> Result<Device> {
    #[allow(deprecated)]
    Ok(Device::ndarray())
}

#[cfg(not(feature = "ndarray"))]
fn ndarray() -> Result<Device> {
    unreachable!("check_built refuses ndarray in a build without it")
}

/// Keeps the GPU runtime's autotune results in `dir`, so that choosing the fastest kernel for
/// each matrix shape (minutes on a slow device) is paid once per machine, not once per
/// process or per working folder (CubeCL's default is the `target/` of the Cargo project
/// around the working directory, else the user's cache). Takes effect when called before the
/// first GPU device is made; later calls, and builds without a GPU backend, do nothing.
pub fn keep_gpu_tuning_in(dir: &std::path::Path) {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    {
        use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
        // A user's cubecl.toml and CUBECL_* variables still apply; only the folder is ours.
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        config.environment.path = CacheConfig::Directory(dir.to_path_buf());
        CubeClRuntimeConfig::try_set(config);
    }
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    let _ = dir;
}

/// Gives the GPU drivers' loaders a private `XDG_RUNTIME_DIR` when none is set. On a machine
/// without a desktop session (a server, CI, a container) the Vulkan/EGL loaders otherwise
/// print "error: XDG_RUNTIME_DIR is invalid or not set in the environment" into the user's
/// terminal while probing for display servers thaw never uses. A value the user set is kept.
///
/// # Safety
/// Sets an environment variable: call it before the process starts any thread.
#[cfg(unix)]
pub unsafe fn give_gpu_loaders_a_runtime_dir() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("thaw-runtime-{uid}"));
    let private = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)));
    if private.is_ok() {
        // SAFETY: the caller guarantees no other thread exists yet.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

/// The GPU runtimes, each started once per process: its first start says clearly when there
/// is no device, and later calls share the started one.
mod gpu {
    #[allow(unused_imports)]
    use super::{Device, Result, TrainError};

    #[cfg(feature = "wgpu")]
    pub fn wgpu() -> Result<Device> {
        static STARTED: std::sync::OnceLock<std::result::Result<Device, String>> =
            std::sync::OnceLock::new();
        STARTED
            .get_or_init(|| {
                Device::wgpu_options().init().map_err(|e| {
                    format!(
                        "no usable wgpu device ({e}); a GPU needs its Vulkan/Metal/DX12 driver, and a machine without one can use Mesa's software Vulkan (Debian/Ubuntu: apt-get install mesa-vulkan-drivers)"
                    )
                })
            })
            .clone()
            .map_err(TrainError::Backend)
    }

    #[cfg(not(feature = "wgpu"))]
    pub fn wgpu() -> Result<Device> {
        unreachable!("check_built refuses wgpu in a build without it")
    }

    #[cfg(feature = "cuda")]
    pub fn cuda() -> Result<Device> {
        // burn's CUDA runtime loads the driver library on first use and panics without one:
        // turn that into an error a job can report.
        static STARTED: std::sync::OnceLock<std::result::Result<Device, String>> =
            std::sync::OnceLock::new();
        STARTED
            .get_or_init(|| {
                std::panic::catch_unwind(|| {
                    let device = Device::cuda(0);
                    let _ = burn::tensor::Tensor::<1>::zeros([1], &device).into_data();
                    device
                })
                .map_err(|_| {
                    "no usable CUDA device: the cuda backend needs an NVIDIA GPU and its driver (libcuda)".to_string()
                })
            })
            .clone()
            .map_err(TrainError::Backend)
    }

    #[cfg(not(feature = "cuda"))]
    pub fn cuda() -> Result<Device> {
        unreachable!("check_built refuses cuda in a build without it")
    }
}

/// This machine's CPU model, from /proc/cpuinfo where there is one.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

impl BackendKind {
    /// The device this backend computes on, as a result records it: the CPU's model for
    /// the CPU backends, the adapter's own name for a GPU (`llvmpipe (LLVM 15.0.6, 256
    /// bits)` for Mesa's software Vulkan).
    pub fn device_name(self) -> String {
        if !self.is_gpu() {
            return cpu_model();
        }
        static NAMES: std::sync::Mutex<Vec<(BackendKind, String)>> =
            std::sync::Mutex::new(Vec::new());
        let mut names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, name)) = names.iter().find(|(kind, _)| *kind == self) {
            return name.clone();
        }
        let name = gpu_identity(self).unwrap_or_else(|| format!("unknown {self} device"));
        names.push((self, name.clone()));
        name
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn gpu_identity(kind: BackendKind) -> Option<String> {
    kind.device().ok()?.identity().map(|id| id.name)
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn gpu_identity(_: BackendKind) -> Option<String> {
    None
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
            TrainError::Invalid(format!(
                "unknown backend '{s}'; choose flex, ndarray, wgpu or cuda"
            ))
        })
    }
}

/// Hands the device's pooled memory back after a job, so a worker running job after job on
/// a GPU holds what one job needs, not the sum (burn's #5212 reports growth otherwise).
/// Waits for queued work first. The CPU backends free as they go; there it costs nothing.
pub fn release_device_memory(device: &Device) {
    // A failed sync means the device is gone; the next job reports that with context.
    let _ = device.sync();
    device.memory_cleanup();
}

/// Runs `work` on a thread of rayon's pool, the one the CPU kernels and matrix multiplies
/// split their work over, and waits for it. From any other thread each of the thousands of
/// parallel operations in a training step is handed to the pool and waited for (a wake-up
/// and a sleep per operation, measured at 8 to 15 % of a step on 2 cores); from a pool
/// thread the caller works on its share itself. Called from a pool thread, it runs `work`
/// in place.
pub fn on_compute_threads<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}
