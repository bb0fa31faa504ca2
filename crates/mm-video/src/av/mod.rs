//! Audio-visual learning on the video reader and `mm-audio`'s front-end: clips with their
//! sound ([`clips`]), the controlled synchronization set ([`synth`]), and the guide's
//! synchronization model ([`sync_model`]) with its training ([`sync_train`]) and offset
//! estimation and evaluation ([`sync_eval`]) beside a baseline that learns nothing
//! ([`sync_baseline`]); sound-source localization: scenes of stamps
//! with their sounds ([`scenes`]), the two localizers ([`localizer`]) on their shared encoders
//! ([`localizer_encoders`]), their training batches ([`localizer_batches`]) and training
//! ([`localizer_train`]), and the text bridge that ties the attention localizer to caption
//! embeddings ([`bridge`]), a frozen pretrained picture side ([`backbone`]), and sound
//! embeddings made by another model as the sound side's input ([`sound_embeddings`]).

pub mod backbone;
pub mod bridge;
pub mod clips;
pub mod localizer;
pub mod localizer_batches;
pub mod localizer_encoders;
pub mod localizer_eval;
pub mod localizer_train;
pub mod pair_loss;
pub mod scenes;
pub mod sound_embeddings;
pub mod sound_variation;
pub mod sync_baseline;
pub mod sync_eval;
pub mod sync_model;
pub mod sync_train;
pub mod synth;

pub use clips::{AvClip, load_av_clips};
pub use sync_baseline::motion_onset_offset;
pub use sync_eval::{
    OffsetEstimate, SyncReport, estimate_offset, evaluate_offsets, evaluate_sync, load_sync,
};
pub use sync_model::{SyncNet, SyncNetConfig};
pub use sync_train::{SyncTrainConfig, train_sync};
