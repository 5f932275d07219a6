//! A throwaway project directory with its own store, and the kvlab binary.

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Sandbox {
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("kvlab-it-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { dir }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.join("artifacts")
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kvlab"));
        c.current_dir(&self.dir)
            .arg("--store")
            .arg(self.store())
            .args(args);
        c
    }

    pub fn kvlab(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("kvlab runs")
    }

    /// Object directories under objects/<shard>/.
    pub fn objects(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(shards) = std::fs::read_dir(self.store().join("objects")) else {
            return out;
        };
        for s in shards {
            for o in std::fs::read_dir(s.unwrap().path()).unwrap() {
                out.push(o.unwrap().path());
            }
        }
        out
    }

    pub fn result(&self, pipeline: &str, stage: &str) -> PathBuf {
        self.dir.join("results").join(pipeline).join(stage)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn env_path(var: &str, what: &str) -> PathBuf {
    let p = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with `make test`, which fetches {what}")
    });
    let p = PathBuf::from(p.trim());
    assert!(p.exists(), "{var}={} does not exist", p.display());
    // Absolute, not canonical: a venv's python must keep its own path.
    std::path::absolute(p).unwrap()
}

pub fn smollm2_gguf() -> PathBuf {
    env_path("KVLAB_SMOLLM2_GGUF", "the SmolLM2 GGUF")
}

pub fn essays_dir() -> PathBuf {
    env_path("KVLAB_ESSAYS_DIR", "the Paul Graham essays")
}

pub fn test_python() -> PathBuf {
    env_path("KVLAB_TEST_PYTHON", "a Python with duckdb and polars")
}

pub const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
pub const ESSAYS_SHA256: &str = "448488d48eb2ed441385ae9fa1df4e0e081f674ec593cfed252a9ababefbe4e4";

/// The `model` (SmolLM2) and `prompts` (MT-Bench) fetch stages over local
/// files, the head of the model-stage test pipelines.
pub fn model_and_prompts_stages() -> String {
    let mt = env_path("KVLAB_MTBENCH", "MT-Bench's question.jsonl");
    format!(
        r#"[stages.model]
kind = "fetch"
file = "{model}"
sha256 = "{SMOLLM2_SHA256}"
output = "model.gguf"
[stages.prompts]
kind = "fetch"
file = "{mt}"
sha256 = "{mtsha}"
output = "questions.jsonl"
"#,
        model = smollm2_gguf().display(),
        mt = mt.display(),
        mtsha = sha256(&mt.display().to_string()),
    )
}

/// A repetitive chat prompt: speculative drafts and presses both have work on it.
pub const REPEAT_PROMPT: &str =
    "List the days of the week, then list them again in the same order.";

/// `kvlab generate --json` on SmolLM2 (f32, 24 tokens, chat) with `extra`
/// flags; the parsed JSON of a successful run.
pub fn generate_json(sb: &Sandbox, extra: &[&str]) -> serde_json::Value {
    let model = smollm2_gguf();
    let mut args = vec![
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        REPEAT_PROMPT,
        "--chat",
        "--max-tokens",
        "24",
        "--dtype",
        "f32",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = sb.kvlab(&args);
    assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// A JSON list of token ids.
pub fn json_ids(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// A pipeline over local copies of the model and essays (no network),
/// with `chunk_extra` appended to the chunk stage and `plot_extra` to plot.
pub fn local_pipeline(name: &str, chunk_extra: &str, plot_extra: &str) -> String {
    format!(
        r#"name = "{name}"

[stages.model]
kind = "fetch"
file = "{model}"
sha256 = "{msha}"
output = "model.gguf"

[stages.essays]
kind = "fetch"
file = "{essays}"
sha256 = "{esha}"
output = "essays"

[stages.chunk]
kind = "chunk"
inputs = {{ model = "model", docs = "essays" }}
chunk_tokens = 256
max_docs = 12
{chunk_extra}

[stages.tasks]
kind = "tasks"
inputs = {{ chunks = "chunk", model = "model" }}
needle_context_tokens = [512]
needle_depths = [0.0, 0.5, 1.0]
ruler_context_tokens = [512]
ruler_samples = 1
qa_samples = 2

[stages.analyze]
kind = "analyze"
inputs = {{ chunks = "chunk", tasks = "tasks" }}

[stages.plot]
kind = "plot"
inputs = {{ analysis = "analyze", chunks = "chunk", tasks = "tasks" }}
{plot_extra}
"#,
        model = smollm2_gguf().display(),
        msha = SMOLLM2_SHA256,
        essays = essays_dir().display(),
        esha = ESSAYS_SHA256,
    )
}

pub fn assert_all_objects_complete(sb: &Sandbox) {
    for o in sb.objects() {
        assert!(
            o.join("manifest.json").exists(),
            "published object without manifest: {}",
            o.display()
        );
    }
}

pub fn count_lines(text: &str, prefix: &str, stage: &str) -> usize {
    text.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(prefix) && w.next() == Some(stage)
        })
        .count()
}

/// Run kvlab and insist it succeeds; its stdout.
pub fn run_ok(sb: &Sandbox, args: &[&str]) -> String {
    let out = sb.kvlab(args);
    assert!(
        out.status.success(),
        "kvlab {args:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// sha256 of a file, as `sha256sum` prints it.
pub fn sha256(p: &str) -> String {
    let o = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap();
    stdout(&o).split_whitespace().next().unwrap().to_string()
}

/// Every file under `dir` but manifests, by path relative to `dir`.
pub fn files_but_manifests(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "manifest.json" {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}
