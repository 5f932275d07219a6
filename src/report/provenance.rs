//! Where the results came from: the content digests of fetched models and
//! datasets (from the fetch stages' manifests and preimages), the kvlab build
//! that made the page, and the build that made each input.

use super::html::Html;
use crate::store::Artifact;

/// One fetched file or directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub stage: String,
    /// `model` or `dataset`, guessed from the file name.
    pub what: &'static str,
    pub output: String,
    /// The pin it came from, or `file` for a local import.
    pub source: String,
    /// The sha256 the fetch checked (the trust anchor).
    pub sha256: String,
    /// What downstream keys depend on.
    pub content_digest: String,
}

/// Model file endings; anything else a fetch brings in is data.
const MODEL_EXT: &[&str] = &[".gguf", ".safetensors"];

/// The fetch stages among `inputs` (stage name, artifact).
pub fn fetched(inputs: &[(String, Artifact)]) -> Vec<Fetched> {
    inputs
        .iter()
        .filter(|(_, a)| a.manifest.stage == "fetch")
        .map(|(stage, a)| {
            let p = &a.manifest.preimage["params"];
            let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
            let output = s("output");
            let source = match (s("pin"), p["packages"].as_array()) {
                (pin, _) if !pin.is_empty() => format!("pin {pin}"),
                (_, Some(pk)) if !pk.is_empty() => {
                    let names: Vec<&str> = pk.iter().filter_map(|v| v.as_str()).collect();
                    names.join(" + ")
                }
                _ => "local file".to_string(),
            };
            Fetched {
                stage: stage.clone(),
                what: if MODEL_EXT.iter().any(|e| output.ends_with(e)) {
                    "model"
                } else {
                    "dataset"
                },
                output,
                source,
                sha256: s("sha256"),
                content_digest: a.manifest.content_digest(),
            }
        })
        .collect()
}

/// The build of kvlab that renders the page.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: String,
    pub git_rev: String,
}

impl BuildInfo {
    pub fn this_binary() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_rev: env!("KVLAB_GIT_REV").to_string(),
        }
    }
}

pub fn render(h: &mut Html, build: &BuildInfo, inputs: &[(String, Artifact)]) {
    h.elem("h3", &[], "Models and datasets");
    let f = fetched(inputs);
    if f.is_empty() {
        h.elem("p", &[], "No fetch stage feeds this report.");
    } else {
        h.raw("<div class=\"scroll\"><table class=\"digests\"><tr><th>stage</th><th>what</th><th>file</th><th>source</th><th>sha256</th><th>content digest</th></tr>\n");
        for x in &f {
            h.raw("<tr>")
                .elem("td", &[], &x.stage)
                .elem("td", &[], x.what)
                .elem("td", &[], &x.output)
                .elem("td", &[], &x.source);
            h.open("td", &[]).elem("code", &[], &x.sha256).close("td");
            h.open("td", &[])
                .elem("code", &[], &x.content_digest)
                .close("td");
            h.raw("</tr>\n");
        }
        h.raw("</table></div>\n");
    }
    h.elem("h3", &[], "Builds");
    h.open("p", &[])
        .text("This page: kvlab ")
        .elem("code", &[], &build.version)
        .text(", git revision ")
        .elem("code", &[], &build.git_rev)
        .text(".")
        .close("p");
    h.raw("<div class=\"scroll\"><table><tr><th>stage</th><th>kind</th><th>git revision</th><th>host</th><th>device</th><th>peak RSS (MiB)</th></tr>\n");
    for (stage, a) in inputs {
        let p = &a.manifest.provenance;
        h.row(
            "td",
            &[
                stage.as_str(),
                a.manifest.stage.as_str(),
                p.git_rev.as_str(),
                p.host.as_str(),
                p.device.as_str(),
                &format!("{:.1}", p.peak_rss_kb as f64 / 1024.0),
            ],
        );
    }
    h.raw("</table></div>\n");
}
