//! mm-text's integration tests, in one binary (one link instead of three; CI's build time is
//! mostly compiling and linking test binaries against Burn's backends).

mod bert_forms;
mod clip_text;
mod clip_tokenizer;
mod common;
mod minilm;
