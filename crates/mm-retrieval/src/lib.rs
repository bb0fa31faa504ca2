//! Embedding indexes and cross-modal search for mm.
//!
//! - [`VectorIndex`]: the index trait (inner product on unit vectors, dense ids), with
//!   [`ExactIndex`] (a matrix product on any Burn device), [`HnswIndex`] (approximate, an
//!   HNSW graph of our own, on the CPU's vector units) and [`UsearchIndex`] (approximate, the
//!   HNSW graph of the maintained usearch library). A distributed vector database plugs in by
//!   implementing it.
//! - [`DurableIndex`]: an index folder with metadata, an atomically replaced snapshot and a
//!   write-ahead log, so an acknowledged addition survives a crash.
//! - [`CrossModalRetrieval`]: images and texts indexed by any [`mm_core::Encoder`] pair,
//!   searched in both directions, Recall@K.

pub mod compact;
pub mod cross_modal;
pub mod durable;
pub mod exact;
pub mod hnsw;
pub mod index;
mod simd;
pub mod snapshot;
pub mod usearch_index;
mod wal;

pub use compact::{PendingSnapshot, WrittenSnapshot};
pub use cross_modal::{CrossModalRetrieval, RecallReport};
pub use durable::{DurableIndex, Found};
pub use exact::ExactIndex;
pub use hnsw::HnswIndex;
pub use index::{Hit, HnswParams, IndexError, IndexKind, VectorIndex};
pub use usearch_index::UsearchIndex;
