//! Data: fetching pinned packages, chunking documents, building evaluation tasks.

pub mod chunking;
pub mod fetch;
pub mod haystack;
pub mod multidoc_qa;
pub mod needle;
pub mod prompts;
pub mod ruler;
pub mod sample;
pub mod word_lists;
