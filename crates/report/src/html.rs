//! The report as HTML: report.md's own text turned into HTML, its chart images replaced by
//! the charts' SVG inline, in one self-contained page (no script, no external file) that
//! reads offline and can be sent. `thaw serve` shows the same body inside its pages.
//!
//! The markdown holds strings from sweep files and datasets (sweep, label and cell names,
//! error messages): any HTML in it is shown as text, and only web and relative links are
//! kept, so a label named `<script>` cannot run.

use std::collections::HashMap;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

/// The CSS of every thaw page: readable tables, charts that fit the window.
pub const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
svg{max-width:100%;height:auto}code{background:#f3f3f3;padding:0 .2em}
.muted{color:#666}.failed{color:#b00}
";

/// `markdown` as an HTML fragment; an image whose file stem names a chart in `charts` (stem
/// to SVG text) is that chart inline.
pub fn body(markdown: &str, charts: &HashMap<String, String>) -> String {
    let mut events = Vec::new();
    // An image's alt text arrives as the events up to its end; the chart replaces them all.
    let mut in_image = false;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            _ if in_image => in_image = !matches!(event, Event::End(TagEnd::Image)),
            Event::Start(Tag::Image { dest_url, .. }) => {
                in_image = true;
                events.push(figure(&dest_url, charts));
            }
            event => events.push(safe(event)),
        }
    }
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    html
}

/// A whole page: `title` and `body_html` with thaw's style, nothing fetched from elsewhere.
pub fn page(title: &str, body_html: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body_html}</body></html>\n",
        escape(title)
    )
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn figure(dest: &str, charts: &HashMap<String, String>) -> Event<'static> {
    match charts.get(chart_stem(dest)) {
        // plotters' SVG, its text escaped by plotters itself.
        Some(svg) => Event::Html(CowStr::from(format!("<figure>{svg}</figure>"))),
        None => Event::Text(CowStr::from(format!("[image {dest}]"))),
    }
}

fn safe(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) if !is_safe_link(&dest_url) => {
            Event::Start(Tag::Link { link_type, dest_url: CowStr::from("#"), title, id })
        }
        other => other,
    }
}

fn chart_stem(dest: &str) -> &str {
    let file = dest.rsplit('/').next().unwrap_or(dest);
    file.split('.').next().unwrap_or(file)
}

/// Web links, in-page anchors and relative paths; never `javascript:` or `data:`.
fn is_safe_link(dest: &str) -> bool {
    let lower = dest.trim().to_ascii_lowercase();
    match lower.find(':') {
        Some(colon) => {
            let scheme = &lower[..colon];
            // A colon after a slash or '#' is inside a relative path, not a scheme.
            scheme.contains(['/', '#', '?']) || scheme == "http" || scheme == "https"
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_in_the_markdown_is_text_and_a_chart_image_is_its_svg() {
        let charts = HashMap::from([("acc".to_string(), "<svg id=\"c\"></svg>".to_string())]);
        let md = "# <script>alert(1)</script>\n\n| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | 2 |\n\n![acc](charts/acc.png)\n\n[x](javascript:alert(1)) [ok](charts/acc.svg)\n";
        let html = body(md, &charts);
        assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("<figure><svg id=\"c\"></svg></figure>"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("href=\"charts/acc.svg\""), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(!html.contains(">acc<"), "the alt text went with the image: {html}");
    }

    #[test]
    fn a_page_escapes_its_title() {
        let page = page("a <b> & \"c\"", "<p>x</p>");
        assert!(page.contains("<title>a &lt;b&gt; &amp; &quot;c&quot;</title>"), "{page}");
    }
}
