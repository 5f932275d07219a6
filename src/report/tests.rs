//! The page end to end on hand-made artifacts: one fetch, one table stage with
//! summaries, one figure stage whose two SVGs share ids.

use super::*;
use crate::plot::testing::{cleanup, tempdir};
use crate::store::{Artifact, Manifest, OutputFile, Provenance};
use polars::prelude::*;
use std::path::Path;

fn artifact(dir: &Path, stage: &str, key: &str, params: serde_json::Value) -> Artifact {
    let mut outputs = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        outputs.push(OutputFile {
            path: name,
            bytes: 1,
            blake3: "00".into(),
        });
    }
    outputs.sort_by(|a, b| a.path.cmp(&b.path));
    Artifact {
        dir: dir.to_path_buf(),
        manifest: Manifest {
            schema: 1,
            stage: stage.into(),
            key: key.into(),
            preimage: serde_json::json!({ "params": params }),
            inputs: vec![],
            items: vec![],
            outputs,
            provenance: Provenance {
                git_rev: format!("rev-of-{stage}"),
                wall_s: 1.25,
                ..Default::default()
            },
        },
    }
}

const SVG: &str = r##"<?xml version="1.0"?>
<svg width="200" height="100" viewBox="0 0 200 100" xmlns="http://www.w3.org/2000/svg">
<defs><clipPath id="clip"><rect width="100" height="50"/></clipPath></defs>
<rect clip-path="url(#clip)" width="200" height="100" fill="#3366cc"/><text x="5" y="20">a &lt; b</text></svg>"##;

fn fixture(root: &Path) -> PageInput {
    let model = root.join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("m.gguf"), b"GGUF").unwrap();
    let analyze = root.join("analyze");
    std::fs::create_dir_all(&analyze).unwrap();
    let mut stats = df!("doc_id" => ["<b>essay</b>", "two"], "n_tokens" => [10i64, 20]).unwrap();
    crate::table::write_parquet(&mut stats, &analyze.join("doc_stats.parquet")).unwrap();
    let mut summary = df!("metric" => (0..30).map(|i| format!("m{i}")).collect::<Vec<_>>(), "value" => (0..30).map(|i| i as f64).collect::<Vec<_>>()).unwrap();
    crate::table::write_parquet(&mut summary, &analyze.join("summary.parquet")).unwrap();
    std::fs::write(analyze.join("summary.json"), r#"{"verdict": "<GO>"}"#).unwrap();
    std::fs::write(analyze.join("summary.md"), "# heading & more\n").unwrap();
    let plot = root.join("plot");
    std::fs::create_dir_all(&plot).unwrap();
    std::fs::write(plot.join("a.svg"), SVG).unwrap();
    std::fs::write(plot.join("a.png"), b"\x89PNG twin").unwrap();
    std::fs::write(plot.join("b.svg"), SVG).unwrap();
    std::fs::write(plot.join("c.png"), b"\x89PNG alone").unwrap();
    std::fs::write(plot.join("evil.svg"), "<svg><script>x()</script></svg>").unwrap();
    let inputs = vec![
        (
            "model".to_string(),
            artifact(
                &model,
                "fetch",
                "aa11223344556677889900",
                serde_json::json!({"pin": "smollm2-135m", "output": "m.gguf", "sha256": "b179c9"}),
            ),
        ),
        (
            "analyze".to_string(),
            artifact(
                &analyze,
                "analyze",
                "bb11223344556677889900",
                serde_json::json!({}),
            ),
        ),
        (
            "plot".to_string(),
            artifact(
                &plot,
                "plot",
                "cc11223344556677889900",
                serde_json::json!({}),
            ),
        ),
    ];
    let mut p = PageInput {
        pipeline: "demo <pipeline>".into(),
        description: "tokens & figures".into(),
        file: "pipelines/demo.toml".into(),
        stages: vec![
            StageRow {
                stage: "model".into(),
                kind: "fetch".into(),
                key: "aa11223344556677889900".into(),
                status: "cached".into(),
                wall_s: Some(0.01),
            },
            StageRow {
                stage: "analyze".into(),
                kind: "analyze".into(),
                key: "bb11223344556677889900".into(),
                status: "computed".into(),
                wall_s: Some(2.5),
            },
        ],
        inputs,
        options: PageOptions {
            table_rows: 1,
            cell_chars: 40,
        },
        build: BuildInfo {
            version: "9.9.9".into(),
            git_rev: "abcdef123456".into(),
        },
    };
    p.add_unlisted_inputs();
    p
}

#[test]
fn page_holds_stages_figures_tables_summaries_and_provenance() {
    let dir = tempdir("report-page");
    let p = fixture(&dir);
    assert_eq!(p.stages.len(), 3, "plot was not run but is an input");
    assert_eq!(p.stages[2].status, "not run");
    let path = page::write(&p, &dir).unwrap();
    let s = std::fs::read_to_string(path).unwrap();

    assert!(s.contains("<h1>demo &lt;pipeline&gt;</h1>"), "name escaped");
    assert!(s.contains("tokens &amp; figures"));
    // Stage table: key prefix of 12 hex, status, wall time, compute time.
    assert!(s.contains("<code>bb1122334455</code>") && !s.contains("bb11223344556"));
    assert!(
        s.contains("<td class=\"computed\">computed</td><td>2.50</td><td>1.25</td>"),
        "{s}"
    );
    assert!(s.contains("<td class=\"notrun\">not run</td><td></td>"));
    // Figures: two inline SVGs with distinct ids, no prolog; the PNG twin of
    // a.svg is left out, the lone c.png is a data: image; the scripted SVG is not inlined.
    assert_eq!(s.matches("<svg ").count(), 2);
    assert!(s.contains("id=\"fig1-clip\"") && s.contains("id=\"fig2-clip\""));
    assert!(s.contains("url(#fig2-clip)"));
    assert!(!s.contains("<?xml"));
    assert_eq!(s.matches("src=\"data:image/png;base64,").count(), 1);
    assert!(s.contains("plot/c.png") && !s.contains("plot/a.png"));
    assert!(!s.contains("<script") && s.contains("not inlined: contains &lt;script&gt;"));
    // Tables: schema, count, first table_rows rows, cells escaped.
    assert!(s.contains("analyze/doc_stats.parquet</code> — 2 rows, first 1 shown, 2 columns"));
    assert!(s.contains("<td>&lt;b&gt;essay&lt;/b&gt;</td>") && !s.contains("<b>essay"));
    assert!(!s.contains("<td>two</td>"), "only table_rows rows");
    // Summaries in full: all 30 rows of the Parquet, the JSON and Markdown verbatim.
    assert!(s.contains("analyze/summary.parquet</code> — 30 rows, 2 columns"));
    assert!(s.contains("<td>m29</td>"));
    assert!(s.contains("{&quot;verdict&quot;: &quot;&lt;GO&gt;&quot;}"));
    assert!(s.contains("<pre># heading &amp; more\n</pre>"));
    // Provenance: the fetched model's digests, this build, each input's build.
    assert!(s.contains("<td>model</td><td>model</td><td>m.gguf</td><td>pin smollm2-135m</td><td><code>b179c9</code>"));
    assert!(s.contains(&p.inputs[0].1.manifest.content_digest()));
    assert!(s.contains("<code>9.9.9</code>") && s.contains("<code>abcdef123456</code>"));
    assert!(s.contains("<td>rev-of-plot</td>"));
    // Self-contained: every reference is a fragment or a data: URI.
    for attr in ["src=\"", "href=\""] {
        for (i, _) in s.match_indices(attr) {
            let v = &s[i + attr.len()..];
            assert!(
                v.starts_with('#') || v.starts_with("data:"),
                "{}",
                &v[..40.min(v.len())]
            );
        }
    }
    cleanup(&dir);
}

#[test]
fn inputs_without_content_say_so() {
    let dir = tempdir("report-none");
    let mut p = fixture(&dir);
    p.inputs.retain(|(n, _)| n == "model");
    let s = page::render(&p).unwrap();
    assert!(s.contains("No input holds a figure."));
    assert!(s.contains("No input holds a Parquet table."));
    assert!(s.contains("No input holds a summary file."));
    cleanup(&dir);
}
