//! Rolling a cache back to a prefix of the text.

use crate::kv::KvCache;

/// Drops every entry at a position >= `pos` (entries are appended in
/// position order, so they are a suffix of each layer even after a press).
pub(crate) fn rollback_to(cache: &mut KvCache, pos: usize) {
    for l in 0..cache.n_layers() {
        let p = cache.positions(l);
        let keep = p.len() - p.iter().rev().take_while(|&&x| x >= pos as i64).count();
        cache.truncate_layer(l, keep);
    }
}

pub(crate) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
