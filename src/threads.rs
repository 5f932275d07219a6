//! Thread policy (filled in by the engine work).
