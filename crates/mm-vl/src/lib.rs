//! mm-vl
