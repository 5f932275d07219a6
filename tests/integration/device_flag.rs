//! `--device` and the `device` stage parameter: CUDA asked of a CPU-only
//! build is one clear line and exit code 2, before anything is loaded or
//! published; `--device cpu` keeps every key; and the `kvlab forward`
//! plumbing that tools/gpu_check.sh drives matches transformers' goldens.

use crate::sandbox::{sha256, smollm2_gguf, stderr, stdout, Sandbox};
use std::path::{Path, PathBuf};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(name)
}

fn one_line_exit_2(out: &std::process::Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "expected exit 2, stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "line lacks '{n}': {err}");
    }
}

/// A perplexity stage of `model` over a short local text (`model` is never
/// loaded where planning fails first).
fn pipeline(sb: &Sandbox, model: &Path, device_line: &str) -> PathBuf {
    let file = if device_line.is_empty() {
        "p.toml"
    } else {
        "q.toml"
    };
    let text = sb.write("t.txt", &"The cache keeps keys and values. ".repeat(8));
    let (model, text) = (model.to_str().unwrap(), text.to_str().unwrap());
    let p = format!(
        "name = \"dev\"\n\
         [stages.model]\nkind = \"fetch\"\nfile = \"{model}\"\nsha256 = \"{}\"\noutput = \"model.gguf\"\n\
         [stages.text]\nkind = \"fetch\"\nfile = \"{text}\"\nsha256 = \"{}\"\noutput = \"t.txt\"\n\
         [stages.ppl]\nkind = \"perplexity\"\ninputs = {{ model = \"model\", text = \"text\" }}\n\
         window = 16\nstride = 16\nmax_windows = 1\n{device_line}\n",
        sha256(model),
        sha256(text),
    );
    sb.write(file, &p)
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_from_a_cpu_build_is_one_line_and_exit_2() {
    let sb = Sandbox::new("device-cpu-only");
    let ids = sb.write("ids.json", "[1, 2, 3]");
    let model = tiny("llama_gqa_tied");
    let (m, i) = (model.to_str().unwrap(), ids.to_str().unwrap());
    for args in [
        vec![
            "generate", "--model", m, "--prompt", "hi", "--device", "cuda",
        ],
        vec![
            "perplexity",
            "--model",
            m,
            "--text",
            i,
            "--device",
            "cuda:1",
        ],
        vec!["forward", "--model", m, "--ids", i, "--device", "cuda"],
    ] {
        let out = sb.kvlab(&args);
        one_line_exit_2(&out, &["--device", "make cuda", "CPU-only"]);
    }
    let cfg = model.join("config.json");
    let p = pipeline(&sb, &cfg, "");
    let out = sb.kvlab(&["run", p.to_str().unwrap(), "--device", "cuda"]);
    one_line_exit_2(&out, &["--device", "make cuda"]);
    let p = pipeline(&sb, &cfg, "device = \"cuda\"");
    let out = sb.kvlab(&["run", p.to_str().unwrap()]);
    one_line_exit_2(&out, &["q.toml", "stages.ppl.device", "make cuda"]);
    assert!(sb.objects().is_empty(), "published: {:?}", sb.objects());
}

#[test]
fn bad_device_names_are_rejected() {
    let sb = Sandbox::new("device-bad");
    let cfg = tiny("llama_gqa_tied").join("config.json");
    let p = pipeline(&sb, &cfg, "device = \"gpu\"");
    let out = sb.kvlab(&["run", p.to_str().unwrap()]);
    one_line_exit_2(&out, &["stages.ppl.device", "cpu, cuda or cuda:N"]);
    let out = sb.kvlab(&["status", p.to_str().unwrap(), "--device", "tpu"]);
    one_line_exit_2(&out, &["--device", "cpu, cuda or cuda:N"]);
}

/// `--device cpu` (flag or parameter) plans the same keys as no device at
/// all: CPU artifacts made before devices existed stay valid. In a CUDA
/// build, `--device cuda` keeps the fetch stages' keys and changes only the
/// model stage's.
#[test]
fn cpu_device_keeps_the_keys() {
    let sb = Sandbox::new("device-keys");
    let model = smollm2_gguf();
    let plain = pipeline(&sb, &model, "");
    let out = sb.kvlab(&["run", plain.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let states = |p: &Path, extra: &[&str]| -> Vec<String> {
        let mut args = vec!["status", p.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let out = sb.kvlab(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let row = |s: &serde_json::Value| format!("{} {}", s["stage"], s["state"]);
        v.as_array().unwrap().iter().map(row).collect()
    };
    let cached = states(&plain, &[]);
    assert!(
        cached.iter().all(|s| s.ends_with("\"cached\"")),
        "{cached:?}"
    );
    assert_eq!(states(&plain, &["--device", "cpu"]), cached);
    let explicit = pipeline(&sb, &model, "device = \"cpu\"");
    assert_eq!(states(&explicit, &[]), cached);
    if cfg!(feature = "cuda") {
        let cuda = states(&plain, &["--device", "cuda"]);
        assert_eq!(cuda.iter().filter(|s| s.ends_with("\"cached\"")).count(), 2);
        assert!(
            cuda.contains(&"\"ppl\" \"missing\"".to_string()),
            "{cuda:?}"
        );
    }
}

/// The plumbing on a tiny checkpoint (CPU, f32): logits and first/last
/// layer K/V of the golden's ids equal transformers', and the timings come
/// back as numbers.
#[test]
fn forward_plumbing_matches_transformers() {
    use candle_core::{Device, Tensor};
    let sb = Sandbox::new("device-forward");
    let dir = tiny("llama_gqa_tied");
    let golden = candle_core::safetensors::load(dir.join("golden.safetensors"), &Device::Cpu)
        .expect("golden");
    let ids: Vec<i64> = golden["input_ids"].to_vec1().unwrap();
    let f = sb.write("ids.json", &serde_json::to_string(&ids).unwrap());
    let out_file = sb.dir.join("out.safetensors");
    let out = sb.kvlab(&[
        "forward",
        "--model",
        dir.to_str().unwrap(),
        "--ids",
        f.to_str().unwrap(),
        "--dtype",
        "f32",
        "--device",
        "cpu",
        "--out",
        out_file.to_str().unwrap(),
        "--prefill",
        "8,24",
        "--repeat",
        "1",
        "--decode",
        "5",
        "--decode-prompt",
        "12",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["prefill"].as_array().unwrap().len(), 2);
    assert!(v["prefill"][1]["tok_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["decode"]["new_ids"].as_array().unwrap().len(), 5);
    let got = candle_core::safetensors::load(&out_file, &Device::Cpu).unwrap();
    let t = ids.len();
    let rel = |a: &Tensor, b: &Tensor| -> f32 {
        let d = (a - b).unwrap().sqr().unwrap().sum_all().unwrap();
        let n = b.sqr().unwrap().sum_all().unwrap();
        (d.to_scalar::<f32>().unwrap() / n.to_scalar::<f32>().unwrap()).sqrt()
    };
    let last = golden["logits"].get(t - 1).unwrap();
    assert!(rel(&got["logits"], &last) < 1e-4);
    for name in ["k.0", "v.0", "k.2", "v.2"] {
        let e = rel(&got[name], &golden[name]);
        assert!(e < 1e-4, "{name}: relative error {e}");
    }
}
