//! WAL append + fsync throughput on the real disk, against the disk's raw
//! fsync rate (the physical limit). Run by hand (see docs/PERF.md):
//!
//! ```sh
//! cargo run --release -p detcd-bench --bin wal_fsync -- [DIR] [SECONDS]
//! ```
//!
//! `DIR` is where the temporary files go (default: the system temp dir);
//! put it on the file system the data directory would be on. Each case runs
//! for `SECONDS` (default 3). Everything written is removed at the end.

use detcd_server::storage::{RealDisk, Wal, WalOptions};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const VALUE: usize = 256;

struct Figures {
    fsyncs: u64,
    entries: u64,
    elapsed: Duration,
}

impl Figures {
    fn print(&self, name: &str) {
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{name:<24} {:>9.0} fsyncs/s {:>10.0} entries/s  ({} fsyncs, {} entries in {:.2} s)",
            self.fsyncs as f64 / secs,
            self.entries as f64 / secs,
            self.fsyncs,
            self.entries,
            secs
        );
    }
}

/// Append 256 bytes + fdatasync, in a loop, to one file.
fn raw(dir: &std::path::Path, budget: Duration) -> Figures {
    let path = dir.join("raw.bin");
    let mut file = OpenOptions::new().create(true).append(true).open(&path).expect("open the raw file");
    let buf = [0x5a_u8; VALUE];
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < budget {
        file.write_all(&buf).expect("write");
        file.sync_data().expect("fdatasync");
        n += 1;
    }
    let elapsed = start.elapsed();
    std::fs::remove_file(&path).expect("remove the raw file");
    Figures { fsyncs: n, entries: n, elapsed }
}

/// `Wal::append` of `batch` entries of 256 bytes, then one `sync()`.
fn wal(dir: &std::path::Path, batch: usize, budget: Duration) -> Figures {
    let wal_dir = dir.join(format!("wal-{batch}"));
    let (mut wal, _) = Wal::open(Arc::new(RealDisk), &wal_dir, WalOptions::default()).expect("open the WAL");
    let value = vec![0x5a_u8; VALUE];
    let mut next = 1_u64;
    let start = Instant::now();
    let mut syncs = 0;
    while start.elapsed() < budget {
        let entries: Vec<(u64, &[u8])> = (next..next + batch as u64).map(|i| (i, value.as_slice())).collect();
        wal.append(&entries).expect("append");
        wal.sync().expect("sync");
        next += batch as u64;
        syncs += 1;
    }
    let elapsed = start.elapsed();
    drop(wal);
    std::fs::remove_dir_all(&wal_dir).expect("remove the WAL");
    Figures { fsyncs: syncs, entries: next - 1, elapsed }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let secs: f64 = args.next().map(|s| s.parse().expect("SECONDS is a number")).unwrap_or(3.0);
    let budget = Duration::from_secs_f64(secs);
    let dir = base.join(format!("detcd-wal-fsync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the temp dir");
    println!("dir {} , {secs} s per case, {VALUE}-byte entries", dir.display());
    raw(&dir, budget).print("raw write+fdatasync");
    for batch in [1, 16, 128] {
        wal(&dir, batch, budget).print(&format!("wal batch {batch}"));
    }
    std::fs::remove_dir_all(&dir).expect("remove the temp dir");
}
