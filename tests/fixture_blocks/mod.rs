//! Reader of the block files written by `fixtures/original/original_rnn.py`
//! (`# comments`, then blocks: a line `NAME ROWS COLS` and ROWS lines of COLS
//! numbers in shortest round-trip decimal, so parsing restores the same bits).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nalgebra::DMatrix;

/// `fixtures/original/NAME` in this repository.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("original")
        .join(name)
}

/// The blocks of a file, by name, as `ROWS × COLS` matrices.
///
/// # Panics
/// On a missing file or a malformed block, naming the file and the block.
pub fn read_blocks(path: &Path) -> BTreeMap<String, DMatrix<f64>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let mut blocks = BTreeMap::new();
    while let Some(header) = lines.next() {
        let fields: Vec<&str> = header.split_whitespace().collect();
        let [name, rows, cols] = fields[..] else {
            panic!("{}: bad block header {header:?}", path.display())
        };
        let (rows, cols): (usize, usize) = (rows.parse().unwrap(), cols.parse().unwrap());
        let mut values = Vec::with_capacity(rows * cols);
        for _ in 0..rows {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("{}: block {name} is short", path.display()));
            values.extend(line.split_whitespace().map(|v| {
                v.parse::<f64>()
                    .unwrap_or_else(|e| panic!("{}: {name}: {v:?}: {e}", path.display()))
            }));
        }
        assert_eq!(
            values.len(),
            rows * cols,
            "{}: block {name}",
            path.display()
        );
        blocks.insert(
            name.to_string(),
            DMatrix::from_row_slice(rows, cols, &values),
        );
    }
    blocks
}
