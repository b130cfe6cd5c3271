//! certs (being built)
