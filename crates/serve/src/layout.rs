//! The frame every page shares: title, thaw's style, the navigation, and for pages that
//! follow a running sweep the script that refreshes their live part.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use thaw_report::html::STYLE;
use thaw_store::Store;

/// Extra style for the app's own parts (tables that sort, the live marker).
const APP_STYLE: &str = "
nav{font-size:.9em;margin-bottom:1em}nav a{margin-right:1em}
th.sortable{cursor:pointer}th.sortable:after{content:' \\2195';color:#aaa}
.live{font-size:.85em;color:#666}.progress td{text-align:right}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dl.facts dt{font-weight:600}
pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:.85em}
";

/// A whole page. `live` marks a page whose `#live` part refreshes itself while work runs.
pub fn page(title: &str, live: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · thaw" }
                // No favicon to fetch: a page asks for nothing the app does not serve.
                link rel="icon" href="data:,";
                style { (PreEscaped(STYLE)) (PreEscaped(APP_STYLE)) }
            }
            body data-live=(if live { "on" } else { "off" }) {
                nav { a href="/" { "All sweeps" } }
                (body)
                script src="/app.js" {}
            }
        }
    }
}

/// Where the page reads from, without a password (a PostgreSQL URL's is never shown).
pub fn database_text(store: &Store) -> String {
    match store.location() {
        thaw_store::Location::Sqlite(path) => format!("Reading {} (read-only)", path.display()),
        thaw_store::Location::Postgres(url) => format!("Reading {} (read-only)", url.describe()),
    }
}

pub fn sweep_href(name: &str) -> String {
    format!("/sweeps/{}/", path_segment(name))
}

/// `text` as one URL path segment.
pub fn path_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
