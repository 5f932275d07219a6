//! The report page assembled: header, stage table, every input's figures,
//! tables and summaries, provenance. One file, no external assets, no script.

use super::figures::{inline_svg, png_img};
use super::html::{anchor, Html};
use super::provenance::{self, BuildInfo};
use super::tables::{self, read_table};
use crate::error::{IoContext, Result};
use crate::store::Artifact;
use std::path::{Path, PathBuf};

/// One stage of the pipeline as the stage table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRow {
    pub stage: String,
    pub kind: String,
    pub key: String,
    /// `computed` / `cached` in the run that made the page, or `not run`.
    pub status: String,
    /// Seconds in that run, when it ran.
    pub wall_s: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
pub struct PageOptions {
    /// Rows shown per table (summaries are shown in full).
    pub table_rows: usize,
    /// Characters shown per table cell.
    pub cell_chars: usize,
}

/// Everything the page is made of; the stage fills it from its context.
#[derive(Debug, Clone)]
pub struct PageInput {
    pub pipeline: String,
    pub description: String,
    pub file: String,
    pub stages: Vec<StageRow>,
    /// (stage name, artifact), in pipeline order.
    pub inputs: Vec<(String, Artifact)>,
    pub options: PageOptions,
    pub build: BuildInfo,
}

impl PageInput {
    /// Add a `not run` row for every input the run did not process (e.g. a
    /// report run alone with `--stage`), so every input is in the table.
    pub fn add_unlisted_inputs(&mut self) {
        for (name, a) in &self.inputs {
            if !self.stages.iter().any(|s| &s.stage == name) {
                self.stages.push(StageRow {
                    stage: name.clone(),
                    kind: a.manifest.stage.clone(),
                    key: a.key().to_string(),
                    status: "not run".into(),
                    wall_s: None,
                });
            }
        }
    }
}

/// Summary files are shown whole; these are the formats read.
const SUMMARY_EXT: &[&str] = &["json", "parquet", "csv", "txt", "md"];

fn is_summary(rel: &str) -> bool {
    let base = rel.rsplit('/').next().unwrap_or(rel);
    base.strip_prefix("summary.")
        .is_some_and(|ext| SUMMARY_EXT.contains(&ext))
}

const CSS: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d232b;\
margin:0 auto;max-width:1200px;padding:24px 32px;background:#fff}\
h1{margin:0 0 4px;font-size:28px}h2{margin-top:36px;border-bottom:2px solid #2b6cb0;padding-bottom:4px}\
h3{margin:22px 0 8px;color:#2b4a6f}nav a{margin-right:14px;color:#2b6cb0}\
.desc{font-size:17px;color:#3c4651}.meta{color:#667}code{font:13px ui-monospace,monospace}\
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}\
th,td{border:1px solid #cfd6de;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#e8eef5}tr:nth-child(even) td{background:#f6f8fa}\
.scroll{overflow-x:auto}.data td{white-space:pre-wrap;max-width:420px}\
.computed{color:#1a7f37;font-weight:600}.cached{color:#2b6cb0}.notrun{color:#888}\
figure{margin:12px 0 22px;border:1px solid #dde3ea;padding:8px}figcaption{font-size:13px;color:#556}\
figure svg,figure img{max-width:100%;height:auto;display:block}\
pre{background:#f6f8fa;border:1px solid #dde3ea;padding:8px;overflow-x:auto;font-size:12px}\
.caption{margin:10px 0 2px}.note{color:#a04000}.digests code{word-break:break-all}";

/// The whole page as one HTML string.
pub fn render(p: &PageInput) -> Result<String> {
    let mut h = Html::new();
    h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.elem("title", &[], &format!("kvlab report — {}", p.pipeline));
    h.raw("<style>").raw(CSS).raw("</style></head>\n<body>\n");
    h.elem("h1", &[], &p.pipeline);
    if !p.description.is_empty() {
        h.elem("p", &[("class", "desc")], &p.description);
    }
    h.open("p", &[("class", "meta")])
        .text("Pipeline file ")
        .elem("code", &[], &p.file)
        .text(&format!(
            " · kvlab {} ({})",
            p.build.version, p.build.git_rev
        ))
        .close("p");
    h.raw("<nav><a href=\"#stages\">Stages</a><a href=\"#figures\">Figures</a><a href=\"#tables\">Tables</a><a href=\"#summaries\">Summaries</a><a href=\"#provenance\">Provenance</a></nav>\n");
    stage_table(&mut h, p);
    figures(&mut h, p)?;
    parquet_tables(&mut h, p)?;
    summaries(&mut h, p)?;
    h.raw("<h2 id=\"provenance\">Provenance</h2>\n");
    provenance::render(&mut h, &p.build, &p.inputs);
    h.raw("</body></html>\n");
    Ok(h.finish())
}

/// Render into `dir/index.html`; returns its path.
pub fn write(p: &PageInput, dir: &Path) -> Result<PathBuf> {
    let path = dir.join("index.html");
    std::fs::write(&path, render(p)?).ctx(format!("write {}", path.display()))?;
    Ok(path)
}

fn stage_table(h: &mut Html, p: &PageInput) {
    h.raw("<h2 id=\"stages\">Stages</h2>\n<table><tr><th>stage</th><th>kind</th><th>key</th><th>status</th><th>wall (s), this run</th><th>compute (s), when made</th></tr>\n");
    for s in &p.stages {
        let made = p
            .inputs
            .iter()
            .find(|(n, _)| n == &s.stage)
            .map(|(_, a)| format!("{:.2}", a.manifest.provenance.wall_s))
            .unwrap_or_default();
        let class = s.status.replace(' ', "");
        h.raw("<tr>")
            .elem("td", &[], &s.stage)
            .elem("td", &[], &s.kind);
        h.open("td", &[])
            .elem("code", &[], s.key.get(..12).unwrap_or(&s.key))
            .close("td");
        h.open("td", &[("class", class.as_str())])
            .text(&s.status)
            .close("td");
        h.elem(
            "td",
            &[],
            &s.wall_s.map(|w| format!("{w:.2}")).unwrap_or_default(),
        );
        h.elem("td", &[], &made).raw("</tr>\n");
    }
    h.raw("</table>\n");
}

/// Output files of `a` with one of the given endings, in manifest order.
fn outputs<'a>(a: &'a Artifact, ends: &'a [&'a str]) -> impl Iterator<Item = &'a str> + 'a {
    a.manifest
        .outputs
        .iter()
        .map(|o| o.path.as_str())
        .filter(move |p| ends.iter().any(|e| p.ends_with(e)))
}

fn figures(h: &mut Html, p: &PageInput) -> Result<()> {
    h.raw("<h2 id=\"figures\">Figures</h2>\n");
    let mut n = 0;
    for (stage, a) in &p.inputs {
        let svgs: Vec<&str> = outputs(a, &[".svg"]).collect();
        // A PNG is shown only when no SVG of the same figure exists.
        let pngs: Vec<&str> = outputs(a, &[".png"])
            .filter(|png| !svgs.contains(&format!("{}.svg", &png[..png.len() - 4]).as_str()))
            .collect();
        if svgs.is_empty() && pngs.is_empty() {
            continue;
        }
        h.elem(
            "h3",
            &[("id", format!("fig-{}", anchor(stage)).as_str())],
            stage,
        );
        for rel in svgs.into_iter().chain(pngs) {
            n += 1;
            let path = a.path(rel);
            h.raw("<figure>");
            if rel.ends_with(".svg") {
                let text =
                    std::fs::read_to_string(&path).ctx(format!("read {}", path.display()))?;
                match inline_svg(&text, &format!("fig{n}")) {
                    Ok(svg) => h.raw(&svg),
                    Err(why) => h.elem("p", &[("class", "note")], &format!("not inlined: {why}")),
                };
            } else {
                let bytes = std::fs::read(&path).ctx(format!("read {}", path.display()))?;
                h.raw(&png_img(&bytes, rel));
            }
            h.open("figcaption", &[])
                .elem("code", &[], &format!("{stage}/{rel}"))
                .close("figcaption")
                .raw("</figure>\n");
        }
    }
    if n == 0 {
        h.elem("p", &[], "No input holds a figure.");
    }
    Ok(())
}

fn parquet_tables(h: &mut Html, p: &PageInput) -> Result<()> {
    h.raw("<h2 id=\"tables\">Tables</h2>\n");
    let mut any = false;
    for (stage, a) in &p.inputs {
        let files: Vec<&str> = outputs(a, &[".parquet"])
            .filter(|r| !is_summary(r))
            .collect();
        if files.is_empty() {
            continue;
        }
        any = true;
        h.elem(
            "h3",
            &[("id", format!("tab-{}", anchor(stage)).as_str())],
            stage,
        );
        for rel in files {
            let t = read_table(
                &a.path(rel),
                Some(p.options.table_rows),
                p.options.cell_chars,
            )?;
            tables::render(h, &format!("{stage}/{rel}"), &t);
        }
    }
    if !any {
        h.elem("p", &[], "No input holds a Parquet table.");
    }
    Ok(())
}

fn summaries(h: &mut Html, p: &PageInput) -> Result<()> {
    h.raw("<h2 id=\"summaries\">Summaries</h2>\n");
    let mut any = false;
    for (stage, a) in &p.inputs {
        for o in a.manifest.outputs.iter().filter(|o| is_summary(&o.path)) {
            any = true;
            let title = format!("{stage}/{}", o.path);
            let path = a.path(&o.path);
            if o.path.ends_with(".parquet") {
                let t = read_table(&path, None, p.options.cell_chars)?;
                tables::render(h, &title, &t);
            } else {
                let bytes = std::fs::read(&path).ctx(format!("read {}", path.display()))?;
                h.open("p", &[("class", "caption")])
                    .elem("code", &[], &title)
                    .close("p");
                h.elem("pre", &[], &String::from_utf8_lossy(&bytes));
            }
        }
    }
    if !any {
        h.elem("p", &[], "No input holds a summary file.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_files_are_recognised_by_name() {
        for yes in [
            "summary.json",
            "summary.parquet",
            "sub/summary.md",
            "summary.csv",
            "summary.txt",
        ] {
            assert!(super::is_summary(yes), "{yes}");
        }
        for no in [
            "summary.png",
            "my_summary.json",
            "summary.json.zst",
            "summary",
        ] {
            assert!(!super::is_summary(no), "{no}");
        }
    }
}
