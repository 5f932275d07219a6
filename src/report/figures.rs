//! Figures inlined into the page: SVG as markup (prolog stripped, ids
//! prefixed so two figures never share one, external references refused) and
//! PNG, when a figure has no SVG twin, as a `data:` image.

use std::fmt;

/// Why an SVG file cannot be inlined as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvgRefused {
    #[error("no <svg> element")]
    NoSvg,
    #[error("contains <{0}>, which a static report does not inline")]
    Active(&'static str),
    #[error("refers to an external resource: {0}")]
    External(String),
}

/// Elements that could run code or pull in other documents.
const ACTIVE: &[&str] = &["script", "foreignobject", "iframe", "object", "embed"];

/// `svg` ready to sit inside an HTML body; every `id` gets `prefix-`, and so
/// do the `#id` / `url(#id)` references to it.
pub fn inline_svg(svg: &str, prefix: &str) -> Result<String, SvgRefused> {
    let start = find_svg_start(svg).ok_or(SvgRefused::NoSvg)?;
    let body = strip_comments(&svg[start..]);
    let lower = body.to_ascii_lowercase();
    for tag in ACTIVE {
        if lower.contains(&format!("<{tag}")) {
            return Err(SvgRefused::Active(tag));
        }
    }
    if let Some(attr) = event_handler(&lower) {
        return Err(SvgRefused::External(format!("event handler {attr}")));
    }
    let mut out = body;
    let mut ids = attr_values(&out, "id");
    // Longest first, so renaming `a` never touches a reference to `ab`.
    ids.sort_by_key(|id| std::cmp::Reverse(id.len()));
    ids.dedup();
    for id in &ids {
        let new = format!("{prefix}-{id}");
        out = out
            .replace(&format!(" id=\"{id}\""), &format!(" id=\"{new}\""))
            .replace(&format!("url(#{id})"), &format!("url(#{new})"))
            .replace(&format!("href=\"#{id}\""), &format!("href=\"#{new}\""));
    }
    for attr in ["href", "xlink:href", "src"] {
        for v in attr_values(&out, attr) {
            if !(v.starts_with('#') || v.starts_with("data:")) {
                return Err(SvgRefused::External(v));
            }
        }
    }
    if lower.contains("url(") {
        for u in out.split("url(").skip(1) {
            let target = u.split(')').next().unwrap_or("");
            let target = target.trim_matches(|c| c == '"' || c == '\'');
            if !target.starts_with('#') {
                return Err(SvgRefused::External(target.to_string()));
            }
        }
    }
    Ok(out.trim().to_string())
}

/// Offset of the root `<svg` element, past any prolog, doctype or comment.
fn find_svg_start(svg: &str) -> Option<usize> {
    let mut i = 0;
    while let Some(off) = svg[i..].find("<svg") {
        let at = i + off;
        let next = svg[at + 4..].chars().next();
        if matches!(next, Some(c) if c.is_whitespace() || c == '>') {
            return Some(at);
        }
        i = at + 4;
    }
    None
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(a) = rest.find("<!--") {
        out.push_str(&rest[..a]);
        rest = match rest[a..].find("-->") {
            Some(b) => &rest[a + b + 3..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The first `on...=` attribute, if any (in lower-cased markup).
fn event_handler(lower: &str) -> Option<String> {
    lower.match_indices(" on").find_map(|(i, _)| {
        let name: String = lower[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let after = lower[i + 1 + name.len()..].trim_start();
        (name.len() > 2 && after.starts_with('=')).then_some(name)
    })
}

/// Values of every ` attr="..."` / ` attr='...'` in `s`.
fn attr_values(s: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for q in ['"', '\''] {
        let pat = format!("{attr}={q}");
        for (i, _) in s.match_indices(&pat) {
            let before = s[..i].chars().next_back();
            if !matches!(before, Some(c) if c.is_whitespace()) {
                continue;
            }
            let v = &s[i + pat.len()..];
            out.push(v.split(q).next().unwrap_or("").to_string());
        }
    }
    out
}

/// A PNG as an `<img>` with a `data:` URI.
pub fn png_img(bytes: &[u8], alt: &str) -> String {
    format!(
        "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
        super::html::esc(alt),
        Base64(bytes)
    )
}

/// Standard base64 with padding (RFC 4648), for `data:` URIs.
struct Base64<'a>(&'a [u8]);

impl fmt::Display for Base64<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::with_capacity(self.0.len().div_ceil(3) * 4);
        for c in self.0.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for k in 0..4 {
                if k <= c.len() {
                    s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prolog_and_comments_go_ids_are_prefixed() {
        let svg = r##"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">
<!-- made by hand -->
<svg width="10" height="10" xmlns="http://www.w3.org/2000/svg">
<defs><clipPath id="c"><rect width="5" height="5"/></clipPath><linearGradient id="cg"/></defs>
<rect clip-path="url(#c)" fill="url(#cg)"/><use href="#c"/><use xlink:href="#cg"/>
</svg>"##;
        let out = inline_svg(svg, "f3").unwrap();
        assert!(out.starts_with("<svg width"), "{out}");
        assert!(!out.contains("<?xml") && !out.contains("DOCTYPE") && !out.contains("by hand"));
        assert!(out.contains(r#"id="f3-c""#) && out.contains(r#"id="f3-cg""#));
        assert!(out.contains("url(#f3-c)") && out.contains("url(#f3-cg)"));
        assert!(out.contains(r##"href="#f3-c""##) && out.contains(r##"xlink:href="#f3-cg""##));
        assert!(!out.contains(r#"id="c""#));
        // Two figures with the same ids no longer collide.
        let other = inline_svg(svg, "f4").unwrap();
        assert!(other.contains(r#"id="f4-c""#));
    }

    #[test]
    fn active_or_external_content_is_refused() {
        let s = |body: &str| format!("<svg xmlns=\"http://www.w3.org/2000/svg\">{body}</svg>");
        assert_eq!(
            inline_svg(&s("<script>alert(1)</script>"), "p"),
            Err(SvgRefused::Active("script"))
        );
        assert!(matches!(
            inline_svg(&s(r#"<image href="http://x/y.png"/>"#), "p"),
            Err(SvgRefused::External(u)) if u == "http://x/y.png"
        ));
        assert!(matches!(
            inline_svg(&s(r#"<rect onclick="x()"/>"#), "p"),
            Err(SvgRefused::External(_))
        ));
        assert!(matches!(
            inline_svg(&s(r#"<rect fill="url(other.svg#g)"/>"#), "p"),
            Err(SvgRefused::External(_))
        ));
        assert_eq!(inline_svg("<svgx/>", "p"), Err(SvgRefused::NoSvg));
        assert!(inline_svg(&s(r#"<image href="data:image/png;base64,AA=="/>"#), "p").is_ok());
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(Base64(raw.as_bytes()).to_string(), enc);
        }
        assert!(png_img(b"\x89PNG", "a<b")
            .starts_with("<img alt=\"a&lt;b\" src=\"data:image/png;base64,iVBORw==\""));
    }
}
