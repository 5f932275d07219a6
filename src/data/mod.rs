//! Data: fetching pinned packages, chunking documents, building evaluation tasks.

pub mod fetch;
