//! A speculative generate stage with ReKV on the real model, through the
//! runner: rejections, a verdict per mode, one gamma's change recomputing only
//! what depends on it, and bad speculative settings refused before anything runs.

use crate::sandbox::{model_and_prompts_stages, stderr, stdout, Sandbox};

fn pipeline(decode_extra: &str) -> String {
    let layers = if decode_extra.contains("self_spec_layers") {
        ""
    } else {
        "self_spec_layers = 20"
    };
    format!(
        r#"name = "r"
{head}[stages.decode]
kind = "generate"
inputs = {{ model = "model", prompts = "prompts" }}
draft = "self"
rekv = true
max_prompts = 1
max_new_tokens = 24
{layers}
{decode_extra}
[stages.rekv]
kind = "rekv"
inputs = {{ decode = "decode" }}
formats = ["svg"]
"#,
        head = model_and_prompts_stages(),
    )
}

fn line<'a>(out: &'a str, stage: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(stage))
        .unwrap_or_else(|| panic!("no line for {stage}: {out}"))
}

#[test]
fn speculative_stage_yields_rejections_and_recomputes_only_what_a_gamma_changes() {
    let sb = Sandbox::new("rekvpipe");
    let p = sb.write("r.toml", &pipeline("gamma_sweep = [3, 4]"));
    let p = p.to_str().unwrap();
    let out = sb.kvlab(&["run", p]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        line(&text, "decode").contains("items: 2 computed, 0 cached"),
        "{text}"
    );
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sb.result("r", "rekv").join("summary.json")).unwrap(),
    )
    .unwrap();
    for mode in ["same_model", "cross_model"] {
        let m = &summary["modes"][mode];
        assert!(m["n_rejections"].as_u64().unwrap() > 0, "{summary}");
        let v = m["verdict"].as_str().unwrap();
        assert!(["GO", "CAUTION", "NO-GO"].contains(&v), "{summary}");
    }
    assert!(sb
        .result("r", "rekv")
        .join("fig2_similarity_per_layer.svg")
        .exists());

    // One more gamma: one new item; the fetches are found, the analysis redone.
    sb.write("r.toml", &pipeline("gamma_sweep = [3, 4, 5]"));
    let out = sb.kvlab(&["run", p]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        line(&text, "decode").contains("items: 1 computed, 2 cached"),
        "{text}"
    );
    assert!(line(&text, "model").starts_with("cached"), "{text}");
    assert!(line(&text, "rekv").starts_with("computed"), "{text}");

    // Bad settings: one line naming the field, exit 2, nothing new in the store.
    let before = sb.objects().len();
    for (extra, field) in [
        ("gamma = 0", "stages.decode.gamma"),
        ("gamma_sweep = [0]", "stages.decode.gamma_sweep"),
        ("lookup_ngram = 0", "stages.decode.lookup_ngram"),
        ("self_spec_layers = 30", "self_spec_layers"),
        ("dynamic_gamma = \"fast\"", "stages.decode.dynamic_gamma"),
    ] {
        let bad = sb.write("bad.toml", &pipeline(extra));
        let out = sb.kvlab(&["run", bad.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra}: {err}");
        assert!(err.contains(field), "{extra}: no {field} in {err}");
        assert_eq!(
            sb.objects().len(),
            before,
            "{extra}: something was published"
        );
    }
}
