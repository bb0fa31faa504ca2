//! The HTTP service tests, in one binary (one link instead of three; CI's build time is mostly
//! linking test binaries against Burn's backends).

mod bad_requests;
mod common;
mod compaction;
mod concurrency;
mod faults;
mod serve;
mod vqa;
