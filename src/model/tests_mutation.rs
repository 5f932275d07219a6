//! Seeded mutation test of the GGUF and safetensors loaders: truncations,
//! bit flips and absurd lengths/counts/dims/offsets written over a valid
//! tiny file. Every case must end in an error or a load, never a panic or a
//! huge allocation (which would abort the test process). Bounded in time.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::tests::{write_tiny, TempDir};
use super::*;
use crate::model::gguf_check;

/// xorshift64*: reproducible cases without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A valid one-layer llama GGUF (f32 tensors).
fn tiny_gguf() -> Vec<u8> {
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
    let md = vec![
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
    let mdr: Vec<(&str, &V)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let tr: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (*k, v)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &mdr, &tr).unwrap();
    out.into_inner()
}

/// One mutation of `good`; `header` bytes at the front are targeted most.
fn mutate(rng: &mut Rng, good: &[u8], header: usize) -> Vec<u8> {
    let mut b = good.to_vec();
    let len = b.len();
    let pos = |rng: &mut Rng| {
        if rng.below(4) == 0 {
            rng.below(len)
        } else {
            rng.below(header)
        }
    };
    match rng.below(3) {
        0 => {
            let at = pos(rng);
            b.truncate(at);
        }
        1 => {
            for _ in 0..1 + rng.below(4) {
                let at = pos(rng);
                b[at] ^= 1 << rng.below(8);
            }
        }
        _ => {
            let absurd = [
                u64::MAX,
                1 << 62,
                1 << 40,
                0xFFFF_FFFF,
                good.len() as u64 + 1,
            ];
            let x = absurd[rng.below(absurd.len())].to_le_bytes();
            let at = pos(rng).min(len.saturating_sub(8));
            // A u32 or a u64 field.
            let w = (4 + 4 * rng.below(2)).min(len - at);
            b[at..at + w].copy_from_slice(&x[..w]);
        }
    }
    b
}

#[test]
fn mutated_headers_are_errors_not_panics() {
    let budget = Duration::from_secs(20);
    let d = TempDir::new("mutate");
    let good = tiny_gguf();
    let gguf = d.0.join("m.gguf");
    std::fs::write(&gguf, &good).unwrap();
    Model::load_gguf(&gguf, &LoadOptions::f32()).expect("the unmutated GGUF loads");
    let st_dir = d.0.join("st");
    std::fs::create_dir_all(&st_dir).unwrap();
    write_tiny(&st_dir, "llama", None, None);
    let st_path = st_dir.join("model.safetensors");
    let st_good = std::fs::read(&st_path).unwrap();
    let st_header = 8 + u64::from_le_bytes(st_good[..8].try_into().unwrap()) as usize;

    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut cases, mut errors, mut panics) = (0, 0, Vec::new());
    let start = Instant::now();
    // Every aligned field of the GGUF header set to each absurd value.
    for at in (0..600.min(good.len() - 8)).step_by(4) {
        for x in [u64::MAX, 1 << 62, 1 << 40] {
            let mut bytes = good.clone();
            bytes[at..at + 8].copy_from_slice(&x.to_le_bytes());
            std::fs::write(&gguf, &bytes).unwrap();
            cases += 1;
            let r = catch_unwind(AssertUnwindSafe(|| {
                let t = crate::tokenizer::Tokenizer::from_gguf_file(&gguf).is_err();
                Model::load_gguf(&gguf, &LoadOptions::f32()).is_err() && t
            }));
            match r {
                Ok(e) => errors += e as usize,
                Err(_) => panics.push(format!("gguf field at byte {at} = {x:#x}")),
            }
        }
    }
    while start.elapsed() < budget / 2 && cases < 4000 {
        let bytes = mutate(&mut rng, &good, 600.min(good.len()));
        std::fs::write(&gguf, &bytes).unwrap();
        cases += 1;
        let r = catch_unwind(AssertUnwindSafe(|| {
            let m = Model::load_gguf(&gguf, &LoadOptions::f32());
            let t = crate::tokenizer::Tokenizer::from_gguf_file(&gguf);
            (m.is_err(), t.is_err())
        }));
        match r {
            Ok((a, _)) => errors += a as usize,
            Err(_) => panics.push(format!("gguf case {cases}")),
        }
    }
    let gguf_cases = cases;
    while start.elapsed() < budget && cases < 7000 {
        let bytes = mutate(&mut rng, &st_good, st_header);
        std::fs::write(&st_path, &bytes).unwrap();
        cases += 1;
        let r = catch_unwind(AssertUnwindSafe(|| {
            Model::load_hf_dir(&st_dir, &LoadOptions::f32()).is_err()
        }));
        match r {
            Ok(e) => errors += e as usize,
            Err(_) => panics.push(format!("safetensors case {}", cases - gguf_cases)),
        }
    }
    println!(
        "mutation: {cases} cases ({gguf_cases} GGUF, {} safetensors), {errors} load errors, {} panics",
        cases - gguf_cases,
        panics.len()
    );
    assert!(
        gguf_cases > 50 && cases > gguf_cases + 50,
        "too few cases ran"
    );
    assert!(panics.is_empty(), "panics: {panics:?}");
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
