//! thaw-serve: `thaw serve`, a local web view of every sweep in a store, read while its
//! workers write. Server-rendered HTML (the report's own tables and charts, inline SVG), one
//! small script of our own for sorting and live refresh, nothing fetched from elsewhere: it
//! works offline and air-gapped.
//!
//! It only reads: the store is opened read-only ([`thaw_store::Store::open_read_only`]).
//! Every string from a sweep file, a dataset or an error is escaped (maud escapes what it
//! interpolates; the report's markdown passes no HTML through), the Content-Security-Policy
//! allows only the app's own script, and any path the app does not define is a 404.

mod index;
mod job_page;
mod layout;
mod progress;
mod routes;
mod server;
mod sweep_page;

pub use progress::{SweepProgress, duration_text};
pub use routes::router;
pub use server::{run, serve};
