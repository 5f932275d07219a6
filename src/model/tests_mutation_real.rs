//! The mutation test on the real SmolLM2 GGUF (KVLAB_SMOLLM2_GGUF): its
//! header (49k-token vocabulary, merges, 272 tensor infos) is what users'
//! downloads look like. Cases run on a copy of the header plus 64 KiB of
//! tensor data (the model load then ends at the first truncated tensor, the
//! tokenizer may load), and a few on a full copy with the header mutated in
//! place, which loads the whole model.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use candle_core::quantized::gguf_file::Content;

use super::tests::TempDir;
use super::tests_mutation::load_gguf_both;
use crate::model::gguf_check;
use crate::mutation::{absurd, mutate, Rng, Tally};
use crate::testutil::smollm2_gguf;

/// Tensor data kept after the header in the truncated copy.
const TAIL: usize = 64 << 10;

/// The first `n` bytes of `path`.
fn prefix(path: &Path, n: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(n);
    File::open(path)
        .unwrap()
        .take(n as u64)
        .read_to_end(&mut b)
        .unwrap();
    b
}

#[test]
fn mutated_smollm2_header_is_an_error_not_a_panic() {
    let src = smollm2_gguf();
    let data_at = Content::read(&mut File::open(&src).unwrap())
        .unwrap()
        .tensor_data_offset as usize;
    // Bounded: the header is a few MiB; the file is not read whole.
    assert!(data_at < 32 << 20, "header of {data_at} bytes");
    let good = prefix(&src, data_at + TAIL);
    let file_len = std::fs::metadata(&src).unwrap().len();
    let fields = gguf_check::fields(&good[..data_at], file_len).unwrap();
    let d = TempDir::new("mutate-real");
    let path = d.0.join("head.gguf");
    let case = |t: &mut Tally, b: &[u8], label: String| {
        std::fs::write(&path, b).unwrap();
        let p = path.clone();
        t.case(|| label, move || load_gguf_both(&p));
    };

    let mut t = Tally::new("SmolLM2 GGUF header", Duration::from_secs(25));
    let mut rng = Rng(0x0005_eed5_0112_0001);
    // Absurd values in the structural fields (counts, key and name lengths,
    // value types, array lengths, ranks, dims, tensor types, offsets) and in
    // a sample of the vocabulary's string lengths, in random order, then
    // truncations, then random mutations, until the budget is spent.
    let values = absurd(good.len());
    let (mut targets, elements): (Vec<gguf_check::Field>, Vec<gguf_check::Field>) =
        fields.iter().copied().partition(|f| !f.in_array);
    targets.extend((0..200).map(|_| elements[rng.below(elements.len())]));
    for i in (1..targets.len()).rev() {
        targets.swap(i, rng.below(i + 1));
    }
    for f in targets.iter().take(1500) {
        if !t.more(usize::MAX) {
            break;
        }
        let x = values[rng.below(values.len())].to_le_bytes();
        let mut b = good.clone();
        b[f.at..f.at + f.width].copy_from_slice(&x[..f.width]);
        case(&mut t, &b, format!("field at byte {} = {x:?}", f.at));
    }
    for _ in 0..200 {
        if !t.more(usize::MAX) {
            break;
        }
        let at = rng.below(good.len());
        case(&mut t, &good[..at], format!("truncated at {at}"));
    }
    while t.more(5000) {
        let b = mutate(&mut rng, &good, data_at);
        let n = t.cases;
        case(&mut t, &b, format!("random case {n}"));
    }
    t.finish(200);

    // Full copy: header bit flips and absurd values in place, whole loads.
    let full = d.0.join("full.gguf");
    std::fs::copy(&src, &full).unwrap();
    let mut t = Tally::new("SmolLM2 GGUF full file", Duration::from_secs(15));
    while t.more(40) {
        let mut b = mutate(&mut rng, &good[..data_at], data_at);
        if b.len() < data_at {
            // In place means no truncation: flip a bit instead.
            b = good[..data_at].to_vec();
            let at = rng.below(data_at);
            b[at] ^= 1 << rng.below(8);
        }
        let mut f = std::fs::OpenOptions::new().write(true).open(&full).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(&b).unwrap();
        drop(f);
        let p = full.clone();
        let n = t.cases;
        t.case(|| format!("full case {n}"), move || load_gguf_both(&p));
    }
    t.finish(5);
}
