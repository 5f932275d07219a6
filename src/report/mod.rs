//! The report: one self-contained HTML page per pipeline run, made of the
//! run's stage table and every input's figures, tables, summaries and
//! provenance. No external assets and no script; all text escaped.

pub mod figures;
pub mod html;
pub mod page;
pub mod provenance;
pub mod tables;
#[cfg(test)]
mod tests;

pub use page::{PageInput, PageOptions, StageRow};
pub use provenance::BuildInfo;
