//! Building the proposer that runs a `Draft` (a cascade nests the proposer
//! of its own draft).

use super::cascade::CascadeProposer;
use super::draft::{Draft, LookupProposer, ModelProposer, SelfProposer};
use super::proposer::Proposer;
use crate::model::Model;

impl<'m> Draft<'m> {
    pub(crate) fn proposer(&self, verifier: &'m Model) -> Box<dyn Proposer + 'm> {
        match self {
            Draft::Model { model, .. } => Box::new(ModelProposer::new(model)),
            Draft::SelfSpec { layers } => Box::new(SelfProposer::new(*layers, verifier)),
            Draft::Lookup { ngram } => Box::new(LookupProposer::new(*ngram)),
            Draft::Cascade {
                draft,
                intermediate,
                ..
            } => Box::new(CascadeProposer::new(
                draft.proposer(intermediate),
                intermediate,
            )),
        }
    }
}
