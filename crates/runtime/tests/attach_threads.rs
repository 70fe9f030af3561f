//! `attach` forks and runs Rust code in the child, so it must refuse to run in a
//! multi-threaded process (it checks before forking anything).

use lxrs_runtime::attach::{attach, AttachError, AttachOptions, AttachTarget};
use std::sync::mpsc;

#[test]
fn refuses_in_a_multithreaded_process() {
    let (tx, rx) = mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let target = AttachTarget::new("t", std::process::id() as i32);
    let opts = AttachOptions {
        command: vec!["true".into()],
        ..Default::default()
    };
    let r = attach(&target, &opts);
    drop(tx);
    helper.join().unwrap();
    match r {
        Err(AttachError::Threaded { threads }) => assert!(threads >= 2),
        other => panic!("expected a Threaded error, got {other:?}"),
    }
}
