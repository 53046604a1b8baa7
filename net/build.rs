//! Generates the peer RPC (proto/raftpeer.proto) with madsim-tonic-build:
//! real tonic code in OUT_DIR and the simulated one in OUT_DIR/sim;
//! `tonic::include_proto!` (madsim-tonic) picks the one the build needs.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // protoc is not installed on the machines; use the vendored binary
    // unless the environment names one.
    if std::env::var_os("PROTOC").is_none() {
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    println!("cargo:rerun-if-env-changed=PROTOC");
    tonic_build::configure().bytes(["."]).compile_protos(&["proto/raftpeer.proto"], &["proto"])?;
    Ok(())
}
