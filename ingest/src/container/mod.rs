//! Containers and codecs (being built).
