//! Shared nothing: every guest is an example of this crate.
