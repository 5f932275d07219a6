//! Bad input: one clear line naming the file and field, exit code 2, and
//! nothing published.

use crate::sandbox::{local_pipeline, stderr, Sandbox};

fn expect_exit_2(sb: &Sandbox, pipeline: &str, needles: &[&str]) {
    let path = sb.write("p.toml", pipeline);
    let out = sb.kvlab(&["run", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "expected exit 2, stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].contains("p.toml"), "line does not name the file: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "line lacks '{n}': {err}");
    }
    assert!(sb.objects().is_empty(), "something was published: {:?}", sb.objects());
}

const FETCH_SIX: &str = r#"
[stages.six]
kind = "fetch"
packages = ["six==1.16.0"]
paths = ["six.py"]
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
output = "six.py"
"#;

#[test]
fn toml_syntax_error_names_the_line() {
    let sb = Sandbox::new("syntax");
    expect_exit_2(&sb, "[stages.a]\nkind = \"fetch\"\npin = = 3\n", &["line 3", "TOML"]);
}

#[test]
fn unknown_stage_kind() {
    let sb = Sandbox::new("kind");
    expect_exit_2(&sb, "[stages.a]\nkind = \"teleport\"\n", &["stages.a.kind", "teleport"]);
}

#[test]
fn unknown_parameter() {
    let sb = Sandbox::new("param");
    expect_exit_2(&sb, "[stages.a]\nkind = \"fetch\"\npin = \"alice29\"\nchunk_size = 3\n", &["stages.a.chunk_size", "unknown parameter"]);
}

#[test]
fn dependency_cycle() {
    let sb = Sandbox::new("cycle");
    let p = "[stages.m]\nkind = \"fetch\"\npin = \"smollm2-135m\"\n\
             [stages.a]\nkind = \"chunk\"\ninputs = { model = \"m\", docs = \"b\" }\n\
             [stages.b]\nkind = \"chunk\"\ninputs = { model = \"m\", docs = \"a\" }\n";
    expect_exit_2(&sb, p, &["dependency cycle", "a -> b -> a"]);
}

#[test]
fn dependency_on_missing_stage() {
    let sb = Sandbox::new("missing");
    let p = "[stages.m]\nkind = \"fetch\"\npin = \"smollm2-135m\"\n\
             [stages.a]\nkind = \"chunk\"\ninputs = { model = \"m\", docs = \"nowhere\" }\n";
    expect_exit_2(&sb, p, &["stages.a.inputs.docs", "nowhere"]);
}

#[test]
fn chunk_tokens_zero() {
    let sb = Sandbox::new("zero");
    let p = local_pipeline("zero", "", "").replace("chunk_tokens = 256", "chunk_tokens = 0");
    expect_exit_2(&sb, &p, &["stages.chunk.chunk_tokens", "> 0"]);
}

#[test]
fn ratio_like_ranges_are_checked() {
    let sb = Sandbox::new("depth");
    let p = local_pipeline("depth", "", "").replace("needle_depths = [0.0, 0.5, 1.0]", "needle_depths = [0.0, 1.5]");
    expect_exit_2(&sb, &p, &["stages.tasks.needle_depths", "1.5"]);
}

#[test]
fn sha256_mismatch_of_a_local_file() {
    let sb = Sandbox::new("sha-local");
    let p = format!(
        "[stages.model]\nkind = \"fetch\"\nfile = \"{}\"\nsha256 = \"{}\"\noutput = \"model.gguf\"\n",
        crate::sandbox::smollm2_gguf().display(),
        "ab".repeat(32)
    );
    expect_exit_2(&sb, &p, &["stages.model.sha256", "mismatch"]);
}

#[test]
fn sha256_mismatch_of_a_download() {
    let sb = Sandbox::new("sha-pip");
    expect_exit_2(&sb, FETCH_SIX, &["stages.six.sha256", "mismatch"]);
}

#[test]
fn python_missing() {
    let sb = Sandbox::new("nopython");
    let path = sb.write("p.toml", FETCH_SIX);
    let out = sb.cmd(&["run", path.to_str().unwrap()]).env("PATH", sb.dir.join("empty-bin")).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("p.toml") && err.contains("stages.six") && err.contains("python3 not found"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(sb.objects().is_empty());
}

#[test]
fn pip_missing() {
    let sb = Sandbox::new("nopip");
    let fake = sb.write("bin/python3", "#!/bin/sh\necho 'No module named pip' >&2\nexit 1\n");
    std::process::Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let path = sb.write("p.toml", FETCH_SIX);
    let out = sb.cmd(&["run", path.to_str().unwrap()]).env("PATH", sb.dir.join("bin")).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("p.toml") && err.contains("pip is not available"), "{err}");
    assert!(sb.objects().is_empty());
}

#[test]
fn empty_dataset() {
    let sb = Sandbox::new("empty");
    std::fs::create_dir_all(sb.dir.join("no-docs")).unwrap();
    // sha256 of an empty listing is the sha256 of "".
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let p = local_pipeline("empty", "", "")
        .replacen(&crate::sandbox::essays_dir().display().to_string(), &sb.dir.join("no-docs").display().to_string(), 1)
        .replacen(crate::sandbox::ESSAYS_SHA256, empty, 1);
    let path = sb.write("p.toml", &p);
    let out = sb.kvlab(&["run", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("p.toml") && err.contains("stages.chunk.inputs.docs") && err.contains("empty dataset"), "{err}");
    // The fetch stages before it may publish; the failing stage must not.
    let chunk_objects = sb.objects().into_iter().filter(|o| {
        std::fs::read_to_string(o.join("manifest.json")).map(|m| m.contains("\"stage\": \"chunk\"")).unwrap_or(false)
    }).count();
    assert_eq!(chunk_objects, 0);
    assert!(!sb.result("empty", "chunk").exists());
}
