//! broadcast (being built)
