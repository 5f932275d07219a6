//! Multi-document QA with facts planted across chunks of different essays:
//! a two-hop chain (person -> company -> city) split over two documents,
//! with distractor facts in the others.

use super::haystack::ChunkRef;
use super::sample::{Sample, TokenCounter};
use super::word_lists::{CITIES, COMPANIES, PEOPLE};
use crate::error::{other, Result};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use std::collections::BTreeMap;

pub fn qa_sample(
    idx: usize,
    chunks: &[ChunkRef],
    n_docs: usize,
    count: TokenCounter,
    rng: &mut impl Rng,
) -> Result<Sample> {
    // One chunk from each of n_docs distinct documents.
    let mut by_doc: BTreeMap<&str, Vec<&ChunkRef>> = BTreeMap::new();
    for c in chunks {
        by_doc
            .entry(c.id.split('#').next().unwrap_or(""))
            .or_default()
            .push(c);
    }
    let mut docs: Vec<&Vec<&ChunkRef>> = by_doc.values().collect();
    if docs.len() < 2 || n_docs < 2 {
        return Err(other("multi-doc QA needs at least 2 documents"));
    }
    docs.shuffle(rng);
    let picked: Vec<&ChunkRef> = docs
        .iter()
        .take(n_docs)
        .map(|d| *d.choose(rng).expect("non-empty"))
        .collect();
    let people: Vec<&str> = PEOPLE.choose_multiple(rng, picked.len()).copied().collect();
    let companies: Vec<&str> = COMPANIES
        .choose_multiple(rng, picked.len())
        .copied()
        .collect();
    let cities: Vec<&str> = CITIES.choose_multiple(rng, picked.len()).copied().collect();
    // Fact i in chunk i: even chunks say who works where, odd ones where a company is.
    let mut segments = Vec::new();
    let mut ids = Vec::new();
    let mut n_tok = 0;
    for (i, c) in picked.iter().enumerate() {
        let fact = if i % 2 == 0 {
            format!(" {} works at {}.", people[i], companies[i])
        } else {
            format!(
                " {} has its headquarters in {}.",
                companies[i - 1],
                cities[i]
            )
        };
        let text = format!("{}{}\n\n", c.text.trim_end(), fact);
        n_tok += count(&text)?;
        segments.push(text);
        ids.push(format!("{}+fact", c.id));
    }
    let order: Vec<usize> = {
        let mut o: Vec<usize> = (0..segments.len()).collect();
        o.shuffle(rng);
        o
    };
    let segments: Vec<String> = order.iter().map(|&i| segments[i].clone()).collect();
    let ids: Vec<String> = order.iter().map(|&i| ids[i].clone()).collect();
    Ok(Sample {
        sample_id: format!("multidoc_qa-{idx:03}"),
        task: "multidoc_qa".into(),
        context_tokens: n_tok as i64,
        depth: None,
        n_context_tokens: n_tok as i64,
        segments,
        segment_ids: ids,
        question: format!(
            "In which city is the headquarters of the company where {} works?",
            people[0]
        ),
        answers: vec![cities[1].to_string()],
    })
}
