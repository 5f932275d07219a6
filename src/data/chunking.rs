//! Splitting a tokenized document into chunks of at most `chunk_tokens`,
//! optionally keeping paragraphs whole when they fit.

/// A chunk: where it starts in the document's token sequence and its ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub start_tok: usize,
    pub ids: Vec<u32>,
}

/// Paragraphs of `text`, each keeping its trailing blank-line separator so
/// that concatenating them gives back the text.
pub fn paragraphs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            let mut j = i;
            while j < bytes.len() && (bytes[j] == b'\n' || bytes[j] == b'\r') {
                j += 1;
            }
            if text[i..j].matches('\n').count() >= 2 {
                out.push(&text[start..j]);
                start = j;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Fixed-size split of one id sequence.
pub fn split_fixed(ids: &[u32], chunk_tokens: usize) -> Vec<Chunk> {
    ids.chunks(chunk_tokens)
        .enumerate()
        .map(|(i, c)| Chunk {
            start_tok: i * chunk_tokens,
            ids: c.to_vec(),
        })
        .collect()
}

/// Greedy packing of tokenized paragraphs: a chunk takes whole paragraphs
/// while they fit; a paragraph longer than `chunk_tokens` is cut into pieces.
pub fn pack_paragraphs(paragraph_ids: &[Vec<u32>], chunk_tokens: usize) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    let flush = |current: &mut Vec<u32>, start: &mut usize, pos: usize, chunks: &mut Vec<Chunk>| {
        if !current.is_empty() {
            chunks.push(Chunk {
                start_tok: *start,
                ids: std::mem::take(current),
            });
        }
        *start = pos;
    };
    for p in paragraph_ids {
        if current.len() + p.len() > chunk_tokens {
            flush(&mut current, &mut start, pos, &mut chunks);
        }
        if p.len() > chunk_tokens {
            for piece in p.chunks(chunk_tokens) {
                if piece.len() == chunk_tokens {
                    chunks.push(Chunk {
                        start_tok: pos,
                        ids: piece.to_vec(),
                    });
                    pos += piece.len();
                    start = pos;
                } else {
                    current.extend_from_slice(piece);
                    pos += piece.len();
                }
            }
        } else {
            current.extend_from_slice(p);
            pos += p.len();
        }
    }
    flush(&mut current, &mut start, pos, &mut chunks);
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_concatenate_back() {
        let t = "a b\nc\n\nd e\n\n\nf";
        let ps = paragraphs(t);
        assert_eq!(ps, vec!["a b\nc\n\n", "d e\n\n\n", "f"]);
        assert_eq!(ps.concat(), t);
    }

    #[test]
    fn fixed_split_covers_everything() {
        let ids: Vec<u32> = (0..10).collect();
        let cs = split_fixed(&ids, 4);
        assert_eq!(cs.len(), 3);
        assert_eq!(
            cs[2],
            Chunk {
                start_tok: 8,
                ids: vec![8, 9]
            }
        );
    }

    #[test]
    fn packing_keeps_paragraphs_and_bounds() {
        let ps = vec![vec![1, 2], vec![3, 4, 5], vec![6; 9], vec![7]];
        let cs = pack_paragraphs(&ps, 4);
        assert!(cs.iter().all(|c| c.ids.len() <= 4 && !c.ids.is_empty()));
        let flat: Vec<u32> = cs.iter().flat_map(|c| c.ids.clone()).collect();
        assert_eq!(flat, ps.concat());
        // [1,2] then [3,4,5] does not fit with it: separate chunks.
        assert_eq!(cs[0].ids, vec![1, 2]);
        assert_eq!(cs[1].ids, vec![3, 4, 5]);
        for w in cs.windows(2) {
            assert_eq!(w[0].start_tok + w[0].ids.len(), w[1].start_tok);
        }
    }
}
