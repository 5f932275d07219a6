//! HTML escaping and a tiny string builder: every piece of text that reaches
//! the page goes through `esc`, so table cells, file names and summaries can
//! hold anything.

use std::fmt::Write as _;

/// Escape text for element content and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A fragment identifier from arbitrary text: `[A-Za-z0-9_-]`, everything else
/// becomes `-`, so section links stay `#...` and never need escaping.
pub fn anchor(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// An HTML document under construction.
#[derive(Default)]
pub struct Html {
    buf: String,
}

impl Html {
    pub fn new() -> Html {
        Html::default()
    }

    /// Markup written as is: callers pass only literals or already-checked markup.
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.buf.push_str(markup);
        self
    }

    /// Escaped text.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.buf.push_str(&esc(s));
        self
    }

    /// `<tag attr="value"...>` with escaped attribute values.
    pub fn open(&mut self, tag: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        for (k, v) in attrs {
            let _ = write!(self.buf, " {k}=\"{}\"", esc(v));
        }
        self.buf.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.buf, "</{tag}>");
        self
    }

    /// `<tag>escaped text</tag>`.
    pub fn elem(&mut self, tag: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.open(tag, attrs).text(text).close(tag)
    }

    /// A table row of escaped cells (`th` or `td`).
    pub fn row<S: AsRef<str>>(&mut self, cell: &str, cells: &[S]) -> &mut Self {
        self.raw("<tr>");
        for c in cells {
            self.elem(cell, &[], c.as_ref());
        }
        self.raw("</tr>\n")
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("plain — ünïcode"), "plain — ünïcode");
    }

    #[test]
    fn builder_escapes_text_and_attributes() {
        let mut h = Html::new();
        h.open("p", &[("title", "a\"b")])
            .text("<script>")
            .close("p");
        h.row("td", &["x<y", "1"]);
        let s = h.finish();
        assert_eq!(
            s,
            "<p title=\"a&quot;b\">&lt;script&gt;</p><tr><td>x&lt;y</td><td>1</td></tr>\n"
        );
    }

    #[test]
    fn anchors_are_plain() {
        assert_eq!(anchor("plot/doc tokens.svg"), "plot-doc-tokens-svg");
    }
}
