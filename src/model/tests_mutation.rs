//! Seeded mutation test of the GGUF and safetensors loaders on a synthetic
//! one-layer GGUF and a transformers fixture's safetensors: truncations, bit
//! flips and absurd lengths/counts/dims/offsets. Every case must end in an
//! error or a load, never a panic, a hang or a huge allocation (which would
//! abort the test process). The real SmolLM2 header is in
//! tests_mutation_real.rs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::tests::TempDir;
use super::*;
use crate::model::gguf_check;
use crate::mutation::{absurd, mutate, Outcome, Rng, Tally};

/// A valid one-layer llama GGUF (f32 tensors), with extra metadata.
fn tiny_gguf_with(extra: &[(&str, gguf_file::Value)]) -> Vec<u8> {
    let dev = Device::Cpu;
    let (h, ff, v, q, kv) = (32usize, 64usize, 64usize, 32usize, 16usize);
    let mut seed = 0;
    let mut t = |s: &[usize]| {
        seed += 1;
        let n = s.iter().product();
        let x = crate::cpu::test_data::uniform(seed, n, 0.5);
        let x = Tensor::from_vec(x, s, &dev).unwrap();
        QTensor::quantize(&x, GgmlDType::F32).unwrap()
    };
    let tensors = vec![
        ("token_embd.weight", t(&[v, h])),
        ("output_norm.weight", t(&[h])),
        ("blk.0.attn_norm.weight", t(&[h])),
        ("blk.0.attn_q.weight", t(&[q, h])),
        ("blk.0.attn_k.weight", t(&[kv, h])),
        ("blk.0.attn_v.weight", t(&[kv, h])),
        ("blk.0.attn_output.weight", t(&[h, q])),
        ("blk.0.ffn_norm.weight", t(&[h])),
        ("blk.0.ffn_gate.weight", t(&[ff, h])),
        ("blk.0.ffn_up.weight", t(&[ff, h])),
        ("blk.0.ffn_down.weight", t(&[h, ff])),
    ];
    use gguf_file::Value as V;
    let mut md = vec![
        ("general.architecture", V::String("llama".into())),
        ("llama.embedding_length", V::U32(h as u32)),
        ("llama.feed_forward_length", V::U32(ff as u32)),
        ("llama.block_count", V::U32(1)),
        ("llama.attention.head_count", V::U32(4)),
        ("llama.attention.head_count_kv", V::U32(2)),
        ("llama.attention.layer_norm_rms_epsilon", V::F32(1e-5)),
        ("llama.context_length", V::U32(128)),
        (
            "tokenizer.ggml.tokens",
            V::Array((0..4).map(|i| V::String(format!("t{i}"))).collect()),
        ),
    ];
    md.extend(extra.iter().cloned());
    let mdr: Vec<(&str, &V)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let tr: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (*k, v)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &mdr, &tr).unwrap();
    out.into_inner()
}

fn tiny_gguf() -> Vec<u8> {
    tiny_gguf_with(&[])
}

/// Both readers of a GGUF: the model loader and the tokenizer (this file's
/// four-token vocabulary has no tokenizer model, so only the model loads;
/// a truncated real file never loads the model, so its tokenizer counts).
pub(super) fn load_gguf_both(path: &Path) -> Outcome {
    let m = Model::load_gguf(path, &LoadOptions::f32());
    let t = crate::tokenizer::Tokenizer::from_gguf_file(path);
    if m.is_ok() || t.is_ok() {
        Outcome::Load
    } else {
        Outcome::Error
    }
}

fn gguf_case(t: &mut Tally, path: &Path, bytes: &[u8], label: impl FnOnce() -> String) {
    std::fs::write(path, bytes).unwrap();
    let p = path.to_path_buf();
    t.case(label, move || load_gguf_both(&p));
}

#[test]
fn mutated_synthetic_gguf_is_an_error_not_a_panic() {
    let d = TempDir::new("mutate-gguf");
    let good = tiny_gguf();
    let path = d.0.join("m.gguf");
    std::fs::write(&path, &good).unwrap();
    assert_eq!(load_gguf_both(&path), Outcome::Load, "the unmutated GGUF");
    let header = 600.min(good.len());
    let mut t = Tally::new("synthetic GGUF", Duration::from_secs(10));
    // Every aligned field of the header set to each absurd value.
    for at in (0..header - 8).step_by(4) {
        for x in absurd(good.len()) {
            let mut b = good.clone();
            b[at..at + 8].copy_from_slice(&x.to_le_bytes());
            gguf_case(&mut t, &path, &b, || format!("u64 at byte {at} = {x:#x}"));
        }
    }
    // Every truncation of the header.
    for at in 0..header {
        gguf_case(&mut t, &path, &good[..at], || format!("truncated at {at}"));
    }
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    while t.more(6000) {
        let b = mutate(&mut rng, &good, header);
        let n = t.cases;
        gguf_case(&mut t, &path, &b, || format!("random case {n}"));
    }
    t.finish(1500);
}

/// Metadata candle divides or indexes by: a zero alignment, zero heads or
/// width, absurd vocab and block counts.
#[test]
fn absurd_metadata_values_are_errors() {
    use gguf_file::Value as V;
    let d = TempDir::new("mutate-meta");
    let path = d.0.join("m.gguf");
    let cases: Vec<(&str, V)> = vec![
        ("general.alignment", V::U32(0)),
        ("general.alignment", V::U32(3)),
        ("general.alignment", V::U32(u32::MAX)),
        ("llama.attention.head_count", V::U32(0)),
        ("llama.attention.head_count_kv", V::U32(0)),
        ("llama.attention.head_count", V::U32(u32::MAX)),
        ("llama.embedding_length", V::U32(0)),
        ("llama.block_count", V::U32(u32::MAX)),
        ("llama.feed_forward_length", V::U64(u64::MAX)),
        ("llama.context_length", V::U64(u64::MAX)),
        ("llama.rope.dimension_count", V::U32(u32::MAX)),
        ("llama.attention.key_length", V::U32(0)),
        ("llama.vocab_size", V::U32(u32::MAX)),
        ("tokenizer.ggml.bos_token_id", V::U32(u32::MAX)),
        ("tokenizer.ggml.eos_token_id", V::U32(u32::MAX)),
    ];
    let mut t = Tally::new("synthetic GGUF metadata", Duration::from_secs(10));
    for (k, v) in cases {
        // A key given twice: candle keeps the last one read.
        let b = tiny_gguf_with(&[(k, v.clone())]);
        gguf_case(&mut t, &path, &b, || format!("{k} = {v:?}"));
    }
    t.finish(15);
}

fn copy_fixture(name: &str, to: &Path) -> PathBuf {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(name);
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    to.join("model.safetensors")
}

#[test]
fn mutated_fixture_safetensors_is_an_error_not_a_panic() {
    let d = TempDir::new("mutate-st");
    let st_path = copy_fixture("gemma3_sliding", &d.0);
    let good = std::fs::read(&st_path).unwrap();
    Model::load_hf_dir(&d.0, &LoadOptions::f32()).expect("the unmutated fixture loads");
    let header = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut t = Tally::new("fixture safetensors", Duration::from_secs(10));
    let case = |t: &mut Tally, b: &[u8], label: String| {
        std::fs::write(&st_path, b).unwrap();
        let dir = d.0.clone();
        t.case(
            || label,
            move || Model::load_hf_dir(&dir, &LoadOptions::f32()).into(),
        );
    };
    // The header length itself, every absurd value.
    for x in absurd(good.len()) {
        let mut b = good.clone();
        b[..8].copy_from_slice(&x.to_le_bytes());
        case(&mut t, &b, format!("header length {x:#x}"));
    }
    // Numbers in the JSON header (offsets, dims) replaced by absurd ones.
    let text = String::from_utf8_lossy(&good[8..header]).into_owned();
    let digits: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| c.is_ascii_digit() && !text[..i].ends_with(|p: char| p.is_ascii_digit()))
        .map(|(i, _)| i)
        .collect();
    for (n, &at) in digits.iter().enumerate().step_by(3) {
        let end = at + text[at..].find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        for x in [
            "18446744073709551615",
            "18446744073709551616",
            "4294967296",
            "0",
        ] {
            let json = format!("{}{x}{}", &text[..at], &text[end..]);
            let mut b = (json.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(json.as_bytes());
            b.extend_from_slice(&good[header..]);
            case(&mut t, &b, format!("number {n} = {x}"));
        }
    }
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    while t.more(4000) {
        let b = mutate(&mut rng, &good, header);
        let n = t.cases;
        case(&mut t, &b, format!("random case {n}"));
    }
    t.finish(300);
}

/// The header walk refuses a length candle would try to allocate (the
/// first key's length, at byte 24) and accepts the valid file.
#[test]
fn header_walk_caps_lengths_by_the_file() {
    let good = tiny_gguf();
    let n = good.len() as u64;
    gguf_check::check_bytes(&good, n, "ok.gguf", "header").unwrap();
    for x in [1u64 << 40, u64::MAX, n] {
        let mut b = good.clone();
        b[24..32].copy_from_slice(&x.to_le_bytes());
        let e = gguf_check::check_bytes(&b, n, "bad.gguf", "header").unwrap_err();
        assert!(e.to_string().contains("bad.gguf"), "{e}");
    }
    // A tensor count no file this size can hold.
    let mut b = good.clone();
    b[8..16].copy_from_slice(&(1u64 << 50).to_le_bytes());
    assert!(gguf_check::check_bytes(&b, n, "bad.gguf", "header").is_err());
}
