//! What the benchmark examples share: timing `diagnose check` as a user
//! runs it (wall time, exit status, peak memory of the process), a
//! benchmark workload written as a case file, and how times are printed.
//! Included by `bench_exact.rs` and `bench_peers.rs` with `#[path]`.

#![allow(dead_code)] // each example uses a part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use nalgebra::DMatrix;
use rnn_gradcheck::{Gradients, Params};

/// `1.234 s`, `12.345 ms` or `123.456 us`.
pub fn human(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.3} us", s * 1e6)
    }
}

/// `target/release/diagnose` for `target/release/examples/bench_exact`.
pub fn default_diagnose() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this example")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("locating the target directory")?;
    Ok(dir.join(format!("diagnose{}", std::env::consts::EXE_SUFFIX)))
}

/// Wall time, exit status and peak resident memory (bytes) of
/// `BIN check --method METHOD CASE`.
pub fn time_check(bin: &Path, method: &str, case: &Path) -> anyhow::Result<(f64, i32, u64)> {
    let t0 = Instant::now();
    let child = Command::new(bin)
        .args(["check", "--method", method])
        .arg(case)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    let (status, rss) = wait_with_rss(child)?;
    Ok((t0.elapsed().as_secs_f64(), status, rss))
}

/// Waits for `child`: its exit status and peak resident set (bytes; 0
/// where unknown).
#[cfg(unix)]
pub fn wait_with_rss(child: std::process::Child) -> anyhow::Result<(i32, u64)> {
    let pid = i32::try_from(child.id()).context("process id")?;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!(
            "waiting for process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    std::mem::forget(child); // reaped above
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // ru_maxrss is in kilobytes on Linux.
    Ok((code, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024))
}

#[cfg(not(unix))]
pub fn wait_with_rss(mut child: std::process::Child) -> anyhow::Result<(i32, u64)> {
    let status = child.wait().context("waiting for diagnose")?;
    Ok((status.code().unwrap_or(-1), 0))
}

/// The workload as a JSON case file (layout "column", sigmoid/sigmoid, its
/// biases and `h0`) whose `grads` are `grad`.
pub fn case_json(
    rnn: &rnn_gradcheck::Rnn,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    grad: &Gradients,
) -> anyhow::Result<String> {
    let matrix = |m: &DMatrix<f64>| -> Vec<Vec<f64>> {
        m.row_iter().map(|r| r.iter().copied().collect()).collect()
    };
    let blocks = |p: &Params| {
        let mut o = serde_json::Map::new();
        o.insert("W_xh".into(), matrix(&p.w_xh).into());
        o.insert("W_hh".into(), matrix(&p.w_hh).into());
        o.insert("W_hy".into(), matrix(&p.w_hy).into());
        if let Some(b) = &p.b_h {
            o.insert("b_h".into(), b.as_slice().to_vec().into());
        }
        if let Some(b) = &p.b_y {
            o.insert("b_y".into(), b.as_slice().to_vec().into());
        }
        o
    };
    let mut grads = blocks(grad);
    grads.insert("h0".into(), grad.h_0.as_slice().to_vec().into());
    let case = serde_json::json!({
        "layout": "column",
        "activation": {"hidden": rnn.hidden.name(), "output": rnn.output.name()},
        "params": blocks(&rnn.params),
        "h0": rnn.params.h_0.as_slice(),
        "inputs": matrix(&x.transpose()),
        "targets": matrix(&y.transpose()),
        "grads": grads,
    });
    Ok(serde_json::to_string(&case)?)
}
