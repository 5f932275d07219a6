//! The default quantized path (Q4_1 weights through kvlab's kernels, 8-bit
//! activations, f16 cache — what `kvlab generate` runs without `--dtype`)
//! starts the three plain golden prompts as the f32 path and llama.cpp do.
//! llama.cpp's `llama-simple` (greedy) on the same SmolLM2 Q4_1 file gives
//! " the primary colors of light: red, blue, and green", " Paris.\n\n" and
//! "\n    if n == 0:": Q4_1 weights with 8-bit activations do not change
//! these first tokens, so a quant path that does is a kernel defect.

use crate::model_source::load_model;
use crate::testutil::smollm2_gguf;
use crate::tokenizer::Tokenizer;

/// (prompt, its first four greedy tokens in f32 = transformers' = llama.cpp's).
const CASES: [(&str, [u32; 4]); 3] = [
    (
        "The three primary colors of light are",
        [260, 3003, 4683, 282],
    ),
    ("The capital of France is", [7042, 30, 198, 198]),
    ("def fibonacci(n):", [472, 585, 304, 1758]),
];

fn greedy(m: &super::Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let opts = crate::decode::generate::GenerateOpts {
        max_new_tokens: n,
        temperature: 0.0,
        seed: 0,
        stop_ids: Vec::new(),
    };
    crate::decode::generate::generate(m, prompt, &opts)
        .unwrap()
        .new_ids
}

#[test]
fn default_quant_path_starts_like_f32_and_llama_cpp() {
    let path = smollm2_gguf();
    let tok = Tokenizer::from_gguf_file(&path).unwrap();
    let quant = load_model(&path, "quant", "auto", "cpu").unwrap();
    let f32 = load_model(&path, "f32", "auto", "cpu").unwrap();
    for (prompt, want) in CASES {
        let ids = tok.encode_for_model(prompt).unwrap();
        let q = greedy(&quant, &ids, 4);
        let f = greedy(&f32, &ids, 4);
        assert_eq!(f, want, "f32, {prompt:?}");
        assert_eq!(q, want, "quant, {prompt:?}: {:?}", tok.decode(&q));
    }
}
