//! HTTP service.
pub fn placeholder() {}
