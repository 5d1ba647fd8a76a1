//! Hostile input: the case loader never panics, whatever the bytes, and
//! every refusal is one line naming the file. Arbitrary bytes, and valid
//! JSON and `.npz` files with random mutations (for `.npz`, also mutations
//! of one array's `.npy` bytes re-zipped, so they get past the zip CRC and
//! reach the `.npy` reader). Cases that still load are diagnosed too.
//! A few thousand cases, well under a minute; `PROPTEST_CASES` sets another
//! count, `PROPTEST_RNG_SEED=N` explores others.

use crate::case_support;
use crate::common;
use case_support::{fixture, npz, valid_npz_entries};
use proptest::prelude::*;
use rnn_gradcheck::case;
use rnn_gradcheck::diagnosis::{diagnose, DiagnoseOptions};

const PATH: &str = "fuzz/case";

fn fixtures() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [
        "column_correct.json",
        "row_question.json",
        "no_grads.json",
        "row_correct.npz",
        "column_wrong.npz",
        "row_fortran_bigendian.npz",
        "row_f32.npz",
    ]
    .iter()
    .map(|n| std::fs::read(fixture(n)).unwrap())
    .collect();
    out.push(npz(&valid_npz_entries()));
    out
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

/// Bytes that matter to the parsers.
fn interesting() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[](),:'\"0123456789.-eE+ \nNaTrueFalse\x00\xff\x93".to_vec()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), interesting()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<usize>(), prop::collection::vec(interesting(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let len = bytes.len().max(1);
        match m {
            Mutation::Set(i, b) if !bytes.is_empty() => bytes[i % len] = *b,
            Mutation::Set(..) => {}
            Mutation::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Delete(i, n) if !bytes.is_empty() => {
                let at = i % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Delete(..) => {}
            Mutation::Truncate(i) => bytes.truncate(i % len),
        }
    }
}

/// Loads `bytes`; a refusal must be one line naming the file; a case that
/// loads is diagnosed (on a small sample) without panicking.
fn load_never_panics(bytes: &[u8]) -> Result<(), TestCaseError> {
    match case::parse(bytes, PATH) {
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "one line: {msg:?}");
            prop_assert!(
                msg.starts_with(&format!("{PATH}: ")),
                "names the file: {msg}"
            );
        }
        Ok(c) if c.rnn.params.n_h() * c.t_len() <= 10_000 => {
            let o = DiagnoseOptions {
                sample: Some(2),
                ..DiagnoseOptions::default()
            };
            if let Err(e) = diagnose(c, &o) {
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
        Ok(_) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::config(10_000, "proptest-regressions/case_fuzz.txt"))]

    /// Arbitrary bytes, raw or behind the first bytes of each format.
    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in prop::sample::select(vec![&b""[..], b"{", b"PK\x03\x04", b"{\"params\": {\"W_hh\": "]),
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut all = prefix.to_vec();
        all.extend(bytes);
        load_never_panics(&all)?;
    }
}

proptest! {
    #![proptest_config(common::config(5000, "proptest-regressions/case_fuzz.txt"))]

    /// Valid files with 1 to 8 random edits.
    #[test]
    fn mutated_valid_files_never_panic(
        which in 0usize..8,
        muts in prop::collection::vec(mutation(), 1..8),
    ) {
        let mut bytes = fixtures().swap_remove(which);
        apply(&mut bytes, &muts);
        load_never_panics(&bytes)?;
    }

    /// A valid `.npz` whose one array has random edits inside its `.npy`
    /// bytes (header or data), re-zipped with a correct CRC.
    #[test]
    fn mutated_npy_arrays_never_panic(
        entry in 0usize..6,
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut entries = valid_npz_entries();
        apply(&mut entries[entry].1, &muts);
        load_never_panics(&npz(&entries))?;
    }
}

/// The mutation machinery does produce files that load (so the property
/// also exercises the diagnosis of odd but valid cases), and files that do not.
#[test]
fn the_mutations_reach_both_outcomes() {
    let base = npz(&valid_npz_entries());
    assert!(case::parse(&base, PATH).is_ok());
    let mut edited = valid_npz_entries();
    // Change a data byte of W_hy: still valid.
    let last = edited[2].1.len() - 1;
    apply(&mut edited[2].1, &[Mutation::Set(last, 0x3f)]);
    assert!(case::parse(&npz(&edited), PATH).is_ok());
    // Cut the header short: refused.
    apply(&mut edited[2].1, &[Mutation::Truncate(20)]);
    assert!(case::parse(&npz(&edited), PATH).is_err());
}

/// Why `.npy` headers are checked before npyz sees them: npyz multiplies the
/// shape's dimensions unchecked, which panics in builds with overflow checks
/// (debug and test builds). Our loader refuses the same bytes cleanly.
#[test]
fn npyz_alone_panics_on_an_overflowing_shape_and_the_loader_does_not() {
    let hostile = case_support::npy_raw(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
        &[],
    );
    if cfg!(debug_assertions) {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let raw = std::panic::catch_unwind(|| npyz::NpyFile::new(&hostile[..]).map(|_| ()));
        std::panic::set_hook(default_hook);
        assert!(
            raw.is_err(),
            "npyz accepted it without panicking: the guard may be obsolete"
        );
    }
    let mut entries = valid_npz_entries();
    entries[1].1 = hostile;
    let err = case::parse(&npz(&entries), PATH).unwrap_err().to_string();
    assert!(
        err.contains("key `W_hh`") && err.contains("overflows"),
        "{err}"
    );
}
