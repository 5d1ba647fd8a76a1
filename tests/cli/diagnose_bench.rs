//! `diagnose bench` end to end: bad arguments are one-line errors with exit
//! status 2; a small run prints our result row and its verdict. (No timing
//! is asserted.)

use std::process::Command;

fn diagnose(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_diagnose"))
        .args(args)
        .output()
        .expect("the diagnose binary runs")
}

#[test]
fn an_unknown_workload_or_task_is_a_one_line_error_with_status_2() {
    for (args, needle) in [
        (
            ["bench", "--workloads", "huge"],
            "--workloads: unknown workload \"huge\"",
        ),
        (
            ["bench", "--tasks", "sleep"],
            "--tasks: unknown task \"sleep\"",
        ),
    ] {
        let out = diagnose(&args);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    let quick = ["--workloads", "seed", "--tasks", "gradcheck"];
    let out = diagnose(
        &[
            &["bench", "--no-peers", "--peers", "/nonexistent"][..],
            &quick,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "--no-peers ignores --peers");
    let out = diagnose(&[&["bench", "--peers", "/nonexistent"][..], &quick].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent: no numpy_rnn.py there"));
}

#[test]
fn a_small_run_prints_our_row_and_the_verdict() {
    let out = diagnose(&[
        "bench",
        "--no-peers",
        "--workloads",
        "seed",
        "--tasks",
        "gradcheck",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| seed | gradcheck |"), "{stdout}");
    assert!(stdout.contains("79 entries (h_0 included)"), "{stdout}");
    assert!(stdout.contains("verdict Correct"), "{stdout}");
}
