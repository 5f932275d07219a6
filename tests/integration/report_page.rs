//! The `report` stage end to end without the real model: a tokenizer-only
//! GGUF and a few generated documents, imported with `file =` fetches, then
//! chunk → tasks → analyze → plot → report. The page must be self-contained
//! and render in headless Chromium with nothing missing and something drawn.

use crate::sandbox::{count_lines, run_ok, Sandbox};
use kvlab::data::fetch::{file_sha256, listing_sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STAGES: &[&str] = &[
    "model", "essays", "chunk", "tasks", "analyze", "plot", "report",
];

/// Deterministic English-like documents, a few hundred tokens each.
fn write_docs(sb: &Sandbox) -> PathBuf {
    let words = [
        "cache",
        "attention",
        "token",
        "layer",
        "the",
        "model",
        "keeps",
        "every",
        "key",
        "value",
        "and",
        "position",
        "while",
        "decoding",
        "a",
        "long",
        "context",
        "of",
        "essays",
        "about",
        "startups",
        "work",
        "ideas",
        "people",
    ];
    let mut state = 7u64;
    for d in 0..5 {
        let mut text = String::new();
        for p in 0..6 {
            for w in 0..40 + 7 * ((d + p) % 5) {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let word = words[(state >> 33) as usize % words.len()];
                text.push_str(if w == 0 { "" } else { " " });
                text.push_str(word);
            }
            text.push_str(".\n\n");
        }
        sb.write(&format!("docs/doc{d}.txt"), &text);
    }
    sb.dir.join("docs")
}

fn pipeline(sb: &Sandbox) -> String {
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vocab/ggml-vocab-gpt-2.gguf");
    let docs = write_docs(sb);
    format!(
        r#"name = "rep"
description = "Report check: a tokenizer-only GGUF & five generated <documents>"

[stages.model]
kind = "fetch"
file = "{gguf}"
sha256 = "{gsha}"
output = "model.gguf"

[stages.essays]
kind = "fetch"
file = "{docs}"
sha256 = "{dsha}"
output = "essays"

[stages.chunk]
kind = "chunk"
inputs = {{ model = "model", docs = "essays" }}
chunk_tokens = 64

[stages.tasks]
kind = "tasks"
inputs = {{ chunks = "chunk", model = "model" }}
needle_context_tokens = [128]
needle_depths = [0.0, 1.0]
ruler_context_tokens = [128]
ruler_samples = 1
qa_samples = 2
qa_docs = 2

[stages.analyze]
kind = "analyze"
inputs = {{ chunks = "chunk", tasks = "tasks" }}

[stages.plot]
kind = "plot"
inputs = {{ analysis = "analyze", chunks = "chunk", tasks = "tasks" }}
width = 800
height = 400

[stages.report]
kind = "report"
table_rows = 5
"#,
        gguf = gguf.display(),
        gsha = file_sha256(&gguf).unwrap(),
        docs = docs.display(),
        dsha = listing_sha256(&docs).unwrap(),
    )
}

/// Every `src=` / `href=` value in `html` that is neither a fragment nor a data: URI.
fn external_refs(html: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let v = html[i + attr.len()..].trim_start_matches(['"', '\'']);
            if !(v.starts_with('#') || v.starts_with("data:")) {
                bad.push(v.chars().take(60).collect());
            }
        }
    }
    bad
}

#[test]
fn report_page_is_self_contained_and_renders_in_chromium() {
    let sb = Sandbox::new("report");
    let p = sb.write("rep.toml", &pipeline(&sb));
    let p = p.to_str().unwrap();
    let first = run_ok(&sb, &["run", p]);
    for s in STAGES {
        assert_eq!(
            count_lines(&first, "computed", s),
            1,
            "{s} not computed: {first}"
        );
    }
    let page = sb.result("rep", "report").join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();

    assert!(html.contains("<h1>rep</h1>"), "pipeline name");
    assert!(
        html.contains("a tokenizer-only GGUF &amp; five generated &lt;documents&gt;"),
        "description escaped"
    );
    for s in &STAGES[..6] {
        assert!(
            html.contains(&format!("<tr><td>{s}</td>")),
            "stage {s} missing from the stage table"
        );
    }
    assert!(html.matches("<td class=\"computed\">computed</td>").count() >= 6);
    // plot draws doc_tokens, chunk_lengths and context_lengths in SVG (and PNG, not shown twice).
    assert_eq!(html.matches("<svg ").count(), 3, "three inline SVG figures");
    assert!(!html.contains("<?xml") && !html.contains("<script"));
    assert!(html.contains("chunk/chunks.parquet</code> — ") && html.contains("first 5 shown"));
    assert!(
        html.contains("<td>token_ids</td><td>list[u32]</td>"),
        "schema with dtypes"
    );
    assert!(
        html.contains("analyze/summary.parquet</code> — "),
        "summary in full"
    );
    assert!(
        html.contains(
            &file_sha256(
                &Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data/vocab/ggml-vocab-gpt-2.gguf")
            )
            .unwrap()
        ),
        "model digest"
    );
    assert!(html.contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(
        external_refs(&html),
        Vec::<String>::new(),
        "references outside the page"
    );

    // A second run is cached throughout, the page included.
    let second = run_ok(&sb, &["run", p]);
    assert!(!second.contains("computed "), "{second}");
    assert_eq!(count_lines(&second, "cached", "report"), 1, "{second}");

    render_in_chromium(&sb, &page);
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}

/// Hosts Chromium itself calls at start-up (updates, sign-in, spelling); never the page's.
const CHROMIUM_OWN_HOSTS: &[&str] = &["google.com/", "googleapis.com/", "gvt1.com/"];

fn render_in_chromium(sb: &Sandbox, page: &Path) {
    let Some(bin) = chromium() else {
        eprintln!(
            "SKIP: chromium not installed (apt-get install chromium); the page was not rendered"
        );
        return;
    };
    let page = std::fs::canonicalize(page).unwrap();
    let url = format!("file://{}", page.display());
    let png = sb.dir.join("report.png");
    let mut child = Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        // Verbose logs name every URL the page loads, so a missing asset cannot hide.
        .args(["--enable-logging=stderr", "--v=1"])
        .arg(format!(
            "--user-data-dir={}",
            sb.dir.join("chromium-profile").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .args(["--window-size=1280,2000", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut { stderr_pipe }, &mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = reader.join().unwrap();
    assert!(
        status.success(),
        "chromium failed ({status}): {}",
        tail(&log)
    );
    for line in log.lines() {
        assert!(
            !line.contains("ERR_FILE_NOT_FOUND"),
            "missing resource: {line}"
        );
        if line.contains("net::ERR_") {
            assert!(line.contains("google_apis/gaia"), "network error: {line}");
        }
        if let Some(u) = line.split("FileURLLoader::Start: ").nth(1) {
            assert_eq!(u.trim(), url, "the page loaded another file");
        }
        if let Some(u) = line.split("NotifyBeforeURLRequest: ").nth(1) {
            assert!(
                CHROMIUM_OWN_HOSTS.iter().any(|h| u.contains(h)),
                "the page requested {u}"
            );
        }
    }
    let loaded = log.matches("FileURLLoader::Start: ").count();
    assert_eq!(loaded, 1, "the page itself should be the one file loaded");

    let img = image::open(&png)
        .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), (1280, 2000));
    let total = (img.width() * img.height()) as f64;
    let ink = img
        .pixels()
        .filter(|p| p.0.iter().any(|c| *c < 235))
        .count() as f64;
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    eprintln!(
        "chromium rendered {}: {:.1}% non-white pixels, {} colours",
        png.display(),
        100.0 * ink / total,
        colours.len()
    );
    assert!(
        ink / total > 0.03,
        "screenshot is nearly blank ({:.2}% ink)",
        100.0 * ink / total
    );
    assert!(
        colours.len() >= 16,
        "only {} colours in the screenshot",
        colours.len()
    );
    if let Ok(keep) = std::env::var("KVLAB_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
