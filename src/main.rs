//! `thaw`: the command line. It wires the crates (spec -> plan -> store -> workers ->
//! report) and holds no logic of its own.

mod cli;
mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // SAFETY: first thing in main, before any thread is started.
    #[cfg(unix)]
    unsafe {
        thaw_train::backend::give_gpu_loaders_a_runtime_dir()
    };
    thaw_train::backend::keep_gpu_tuning_in(&thaw_assets::cache_dir().join("gpu-tuning"));
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("THAW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
