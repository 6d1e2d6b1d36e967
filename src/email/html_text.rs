//! The text/plain alternative of an `--html` message. mail-parser's
//! html_to_text breaks lines only at <br> and </p>, so headings, list items,
//! table rows and divisions ran together ("Weekly reportUptime: 99.9%"):
//! each such block's end gets a <br> first.

/// Elements after whose end the text goes on on a new line.
const BLOCKS: [&str; 19] = [
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "div",
    "li",
    "tr",
    "table",
    "ul",
    "ol",
    "blockquote",
    "pre",
    "section",
    "article",
    "header",
    "footer",
    "title",
];

pub fn html_to_text(html: &str) -> String {
    mail_parser::decoders::html::html_to_text(&with_block_breaks(html))
}

fn with_block_breaks(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 16);
    let mut rest = html;
    while let Some(i) = rest.find("</") {
        let (before, tag) = rest.split_at(i);
        out.push_str(before);
        let name_end = tag[2..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map(|n| n + 2)
            .unwrap_or(tag.len());
        let name = &tag[2..name_end];
        match tag.find('>') {
            Some(close) if BLOCKS.iter().any(|b| b.eq_ignore_ascii_case(name)) => {
                out.push_str(&tag[..=close]);
                out.push_str("<br>");
                rest = &tag[close + 1..];
            }
            _ => {
                out.push_str("</");
                rest = &tag[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::html_to_text;

    #[test]
    fn blocks_end_lines() {
        let t =
            html_to_text("<h1>Weekly report</h1><p>Uptime: 99.9%</p><ul><li>a</li><LI>b</LI></ul>");
        assert!(t.contains("Weekly report\nUptime: 99.9%\n"), "{t:?}");
        assert!(t.contains("a\nb\n"), "{t:?}");
        // Inline elements stay inline; stray text is kept.
        let t = html_to_text("<p>a <b>bold</b> word</p> x </ y");
        assert!(t.starts_with("a bold word\n"), "{t:?}");
    }
}
