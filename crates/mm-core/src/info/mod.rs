//! Information measures of the guide's foundations, on discrete distributions, in bits.
//!
//! - [`discrete`]: entropy, mutual information and conditional mutual information of a joint
//!   table, and the [`Trivariate`] distribution of a target `T` and two sources `X`, `Y`.
//! - [`pid`]: partial information decomposition `I(T; X, Y) = R + U_X + U_Y + S`, by
//!   Williams and Beer's `I_min` (the guide's Theorem 2) and by Bertschinger et al.'s
//!   unique information (BROJA).
//! - [`infonce`]: the InfoNCE lower bound `I(X; Y) >= log N - L` of a contrastive model.

pub mod discrete;
pub mod infonce;
pub mod pid;

pub use discrete::{Trivariate, conditional_mutual_information, entropy, mutual_information};
pub use pid::{Pid, broja, williams_beer};

/// A table that is not a probability distribution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InfoError {
    /// Table size does not match its shape.
    #[error("{len} probabilities do not fill shape {shape:?}")]
    Shape {
        /// Number of entries given.
        len: usize,
        /// Shape claimed.
        shape: Vec<usize>,
    },
    /// A negative or non-finite entry.
    #[error("entry {index} is {value}: probabilities must be finite and >= 0")]
    Invalid {
        /// Position of the bad entry.
        index: usize,
        /// The entry.
        value: f64,
    },
    /// Entries that do not sum to 1.
    #[error("probabilities sum to {0}, not 1 (use from_counts for unnormalized tables)")]
    NotNormalized(f64),
    /// No mass at all.
    #[error("the table is empty or all zeros")]
    Empty,
}
