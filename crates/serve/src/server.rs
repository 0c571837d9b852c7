//! `thaw serve` as a process: the store opened read-only, the address bound, the app served
//! until Ctrl-C.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use thaw_store::{Location, Store};

use crate::routes::router;

/// Serves `db` on `bind`; the first line on stdout is the address to open.
pub async fn run(db: &Location, bind: SocketAddr) -> Result<()> {
    let store = Store::open_read_only(db, Some("thaw serve")).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (another thaw serve? pass --bind)"))?;
    let address = listener.local_addr()?;
    println!("http://{address}/");
    eprintln!("thaw serve: reading {db} read-only; open http://{address}/ (Ctrl-C stops)");
    tokio::select! {
        served = serve(store, listener) => served,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Serves `store` on `listener` until the process is stopped.
pub async fn serve(store: Store, listener: tokio::net::TcpListener) -> Result<()> {
    let address = listener.local_addr()?;
    axum::serve(listener, router(store)).await.with_context(|| format!("serving on {address}"))
}
