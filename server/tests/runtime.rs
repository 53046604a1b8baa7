//! The runtime seam passes openraft-rt's own conformance suite (spawn,
//! sleep, instants, timeouts, channels, watch, mutex) on real tokio, and so
//! does the seeded runtime openraft is configured with.

use detcd_server::raft::runtime::{DetcdRuntime, TokioSeam};
use openraft_rt::testing::Suite;
use openraft_rt::AsyncRuntime;

/// Includes openraft-rt's `DetsimSuite` over `DeterministicRng<TokioSeam>`,
/// which is `DetcdRuntime`: same seed, same random sequence.
#[test]
fn tokio_seam_conforms() {
    Suite::<TokioSeam>::test_all();
}

#[test]
fn detcd_runtime_conforms() {
    let mut rt = DetcdRuntime::new(1);
    rt.set_seed(7);
    Suite::<DetcdRuntime>::test_all_on(&mut rt);
}
