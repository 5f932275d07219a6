//! Contexts for synthetic tasks: consecutive essay chunks with planted
//! segments inserted between them at a relative depth.

use rand::Rng;

#[derive(Debug, Clone)]
pub struct ChunkRef {
    /// "<doc_id>#<chunk_id>"
    pub id: String,
    pub text: String,
    pub n_tok: usize,
}

/// A context being assembled: ordered segments with their ids and token counts.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub segments: Vec<String>,
    pub ids: Vec<String>,
    pub n_tok: Vec<usize>,
}

impl Context {
    pub fn tokens(&self) -> usize {
        self.n_tok.iter().sum()
    }

    /// Insert a planted segment at relative `depth` in [0, 1] (a segment boundary).
    pub fn plant(&mut self, depth: f64, text: String, id: String, n_tok: usize) {
        let at = (depth.clamp(0.0, 1.0) * self.segments.len() as f64).round() as usize;
        self.segments.insert(at, text);
        self.ids.insert(at, id);
        self.n_tok.insert(at, n_tok);
    }
}

/// Consecutive chunks from a random start (wrapping) totalling at most
/// `budget` tokens, at least one chunk.
pub fn haystack(chunks: &[ChunkRef], budget: usize, rng: &mut impl Rng) -> Context {
    let mut ctx = Context::default();
    if chunks.is_empty() {
        return ctx;
    }
    let start = rng.random_range(0..chunks.len());
    for k in 0..chunks.len() {
        let c = &chunks[(start + k) % chunks.len()];
        if !ctx.segments.is_empty() && ctx.tokens() + c.n_tok > budget {
            break;
        }
        ctx.segments.push(c.text.clone());
        ctx.ids.push(c.id.clone());
        ctx.n_tok.push(c.n_tok);
    }
    ctx
}
