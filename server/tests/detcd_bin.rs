//! The `detcd` binary as a process: it starts a single member on 127.0.0.1
//! with a temporary data dir, elects itself, stops cleanly on SIGTERM (exit
//! 0) leaving the WAL and snapshot directories, and starts again from them
//! with the same settings given as a config file. Bad configurations exit 1
//! with the reason before anything is created.

mod process;

use detcd_server::cluster::{format_id, member_id};
use process::Detcd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const START_WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn assert_stopped_cleanly(mut detcd: Detcd, data_dir: &Path) {
    let status = detcd.terminate();
    let log: Vec<String> = detcd.log().lines().map(str::to_string).collect();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("received SIGTERM")), "{}", log.join("\n"));
    assert!(log.last().is_some_and(|l| l.contains("stopped")), "{}", log.join("\n"));
    for sub in ["member/wal", "member/snap"] {
        assert!(data_dir.join(sub).is_dir(), "{sub} missing in {}", data_dir.display());
    }
}

#[test]
fn runs_a_member_until_sigterm_and_restarts_from_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("it.detcd");
    let peer = format!("http://127.0.0.1:{}", free_port());
    let client = format!("http://127.0.0.1:{}", free_port());
    let data = data_dir.to_str().unwrap();
    let args = [
        "--name",
        "it",
        "--data-dir",
        data,
        "--listen-peer-urls",
        &peer,
        "--initial-advertise-peer-urls",
        &peer,
        "--listen-client-urls",
        &client,
        "--advertise-client-urls",
        &client,
    ];
    let id = format_id(member_id(std::slice::from_ref(&peer), "etcd-cluster"));

    let mut detcd = Detcd::start(&args);
    let started = detcd.wait_for("starting member", START_WAIT);
    assert!(started.contains(&format!("starting member {id} in cluster ")), "{started}");
    detcd.wait_for(&format!("{id} elected leader {id}"), START_WAIT);
    assert_stopped_cleanly(detcd, &data_dir);
    assert!(std::fs::read_dir(data_dir.join("member/wal")).unwrap().next().is_some(), "the WAL has a segment");

    // The same settings from a config file; the stray flag is ignored.
    let conf = tmp.path().join("detcd.yaml");
    let yaml = format!(
        "name: it\ndata-dir: {data}\nlisten-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n\
         listen-client-urls: {client}\nadvertise-client-urls: {client}\ninitial-cluster-state: existing\n"
    );
    std::fs::write(&conf, yaml).unwrap();
    let mut detcd = Detcd::start(&["--config-file", conf.to_str().unwrap(), "--name", "ignored"]);
    let warning = detcd.wait_for("ignoring --name", START_WAIT);
    assert!(warning.contains("WARN"), "{warning}");
    detcd.wait_for(&format!("{id} elected leader {id}"), START_WAIT);
    assert_stopped_cleanly(detcd, &data_dir);
}

fn run_to_end(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_detcd")).args(args).env_clear().output().expect("detcd runs");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn bad_configurations_exit_1_with_the_reason_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("never");
    let data = data_dir.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--cert-file", "/etc/detcd/server.pem"], "TLS is not implemented in detcd yet: --cert-file is set"),
        (&["--heartbeat-interval", "1s"], "invalid value \"1s\" for --heartbeat-interval"),
        (&["--initial-cluster-state", "maybe"], "expected \"new\" or \"existing\""),
        (&["--name", "a", "--initial-cluster", "b=http://127.0.0.1:1"], "couldn't find local name \"a\""),
    ];
    for (args, reason) in cases {
        let mut all = vec!["--data-dir", data];
        all.extend_from_slice(args);
        let (code, _, stderr) = run_to_end(&all);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
    assert!(!data_dir.exists());

    let (code, stdout, _) = run_to_end(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with(&format!("detcd Version: {}\n", env!("CARGO_PKG_VERSION"))), "{stdout}");
    let (code, _, stderr) = run_to_end(&["--no-such-flag"]);
    assert_eq!(code, Some(2), "{stderr}");
}
