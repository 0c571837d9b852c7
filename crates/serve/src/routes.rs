//! The app's paths and what answers each; every response carries the security headers.

use anyhow::Result;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use thaw_report::{ReportOptions, SweepData, chart_svg};
use thaw_store::Store;

use crate::layout::page;
use crate::{index, job_page, sweep_page};

const APP_JS: &str = include_str!("app.js");

/// Only the app's own script runs; styles and SVG are inline; nothing loads from elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Every path of the app over `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/", get(sweeps))
        .route("/app.js", get(script))
        .route("/sweeps/{sweep}", get(to_sweep_page))
        .route("/sweeps/{sweep}/", get(sweep))
        .route("/sweeps/{sweep}/jobs/{key}", get(job))
        .route("/sweeps/{sweep}/charts/{file}", get(chart))
        .fallback(not_found)
        .layer(axum::middleware::map_response(secure))
        .with_state(store)
}

async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn sweeps(State(store): State<Store>) -> Response {
    answer(index::render(&store).await.map(Some))
}

async fn to_sweep_page(Path(sweep): Path<String>) -> Redirect {
    Redirect::permanent(&crate::layout::sweep_href(&sweep))
}

async fn sweep(State(store): State<Store>, Path(sweep): Path<String>) -> Response {
    answer(sweep_page::render(&store, &sweep).await)
}

async fn job(State(store): State<Store>, Path((sweep, key)): Path<(String, String)>) -> Response {
    answer(job_page::render(&store, &sweep, &key).await)
}

async fn chart(
    State(store): State<Store>,
    Path((sweep, file)): Path<(String, String)>,
) -> Response {
    let Some(stem) = file.strip_suffix(".svg") else { return not_found().await };
    let svg = async {
        if !store.sweeps().await?.iter().any(|s| s.name == sweep) {
            return Ok(None);
        }
        let data = SweepData::load(&store, &sweep).await?;
        chart_svg(&data, &ReportOptions::new(""), stem)
    };
    match svg.await {
        Ok(Some(svg)) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Ok(None) => not_found().await,
        Err(e) => failure(e),
    }
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS).into_response()
}

async fn not_found() -> Response {
    not_found_page("No such page in this thaw serve. ")
}

/// The 404 page, saying why.
fn not_found_page(why: &str) -> Response {
    let body = page(
        "Not found",
        false,
        html! {
            h1 { "Not found" }
            p { (why) a href="/" { "All sweeps" } }
        },
    );
    (StatusCode::NOT_FOUND, body).into_response()
}

/// A page, a 404 for something the database does not hold, or the error as a 500 page.
fn answer(rendered: Result<Option<Markup>>) -> Response {
    match rendered {
        Ok(Some(markup)) => markup.into_response(),
        Ok(None) => not_found_page("This database holds no such sweep or job. "),
        Err(e) => failure(e),
    }
}

fn failure(e: anyhow::Error) -> Response {
    // The store's errors name the database by its location without a password.
    tracing::warn!("page failed: {e:#}");
    let body = page(
        "Error",
        false,
        html! {
            h1 { "This page failed" }
            pre { (format!("{e:#}")) }
        },
    );
    (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
}
