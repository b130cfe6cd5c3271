//! catalog (being built)
