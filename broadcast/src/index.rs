//! The placeholder front page: live streams with links to their master playlists. The web
//! player replaces it later; until then it keeps `/` useful for a quick look.

use std::fmt::Write;

use crate::view::StreamSummary;

/// Renders the page for these streams (only the live ones with something to play).
pub(crate) fn render(streams: &[StreamSummary]) -> String {
    let mut items = String::new();
    for s in streams
        .iter()
        .filter(|s| s.live && !s.renditions.is_empty())
    {
        // Writing to a String cannot fail.
        let _ = writeln!(
            items,
            r#"<li><a href="{}">{}</a></li>"#,
            escape(&s.master_url),
            escape(s.name.as_str()),
        );
    }
    let list = if items.is_empty() {
        "<p>No live streams right now.</p>".to_owned()
    } else {
        format!("<ul>\n{items}</ul>")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>sealcast</title></head>\n\
         <body>\n<h1>Live streams</h1>\n{list}\n</body>\n</html>\n"
    )
}

/// Escapes text for an HTML element or a quoted attribute. Names are validated to safe
/// characters already; this keeps the page safe should that rule ever loosen.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;"
        );
    }

    #[test]
    fn says_so_when_nothing_is_live() {
        assert!(render(&[]).contains("No live streams"));
    }
}
