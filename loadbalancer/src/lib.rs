//! loadbalancer (being built)
