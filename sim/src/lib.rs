//! detcd-sim: deterministic simulation.
//!
//! Today it holds the seeded workload generator and the replay check over
//! core's `apply`: the same seed gives the same trace, byte for byte, and a
//! member restored from a snapshot mid-run ends in the same state. The
//! madsim cluster harness, fault injector and checkers build on this (see
//! docs/SIMULATION.md once it exists).

pub mod workload;
