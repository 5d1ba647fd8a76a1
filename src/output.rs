//! Atomic file output: every file is written to a temporary file in its own
//! directory and renamed into place, so a reader (or a crash) never sees a
//! half-written file, and a run that fails leaves the previous files intact.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("rnn-gradcheck-doc-{}", std::process::id()));
//! use rnn_gradcheck::output::OutputDir;
//! let out = OutputDir::create(&dir).unwrap();
//! out.write("hello.txt", b"hello\n").unwrap();
//! assert_eq!(std::fs::read(dir.join("hello.txt")).unwrap(), b"hello\n");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why output could not be written. Every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output directory could not be created.
    #[error("cannot create output directory {path}: {cause}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The path exists and is not a directory.
    #[error("output path {0} exists and is not a directory")]
    NotADirectory(PathBuf),
    /// Writing (or renaming into place) failed.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A file name that is not a plain name inside the directory.
    #[error("invalid output file name {0:?}: expected a plain file name")]
    BadName(String),
}

/// A directory that files are written into atomically.
#[derive(Debug, Clone)]
pub struct OutputDir {
    dir: PathBuf,
}

impl OutputDir {
    /// Creates `dir` (and its parents) if needed and checks that a file can
    /// be written in it, so an unwritable directory is reported before any
    /// long computation.
    ///
    /// # Errors
    /// [`OutputError`] naming the directory.
    pub fn create(dir: impl AsRef<Path>) -> Result<Self, OutputError> {
        let dir = dir.as_ref().to_path_buf();
        if dir.exists() && !dir.is_dir() {
            return Err(OutputError::NotADirectory(dir));
        }
        fs::create_dir_all(&dir).map_err(|cause| OutputError::CreateDir {
            path: dir.clone(),
            cause,
        })?;
        let probe = temp_path(&dir, "write-probe");
        File::create(&probe).map_err(|cause| OutputError::Write {
            path: dir.clone(),
            cause,
        })?;
        let _ = fs::remove_file(&probe);
        Ok(OutputDir { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes several files: first every file to a temporary name, then all
    /// renamed into place. If any write fails, nothing is renamed and the
    /// temporaries are removed, so the previous files are all intact.
    ///
    /// # Errors
    /// [`OutputError`] naming the first file that could not be written.
    pub fn write_all<'a, I>(&self, files: I) -> Result<Vec<PathBuf>, OutputError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
        let cleanup = |staged: &[(PathBuf, PathBuf)]| {
            for (tmp, _) in staged {
                let _ = fs::remove_file(tmp);
            }
        };
        for (name, bytes) in files {
            let path = match self.checked_path(name) {
                Ok(p) => p,
                Err(e) => {
                    cleanup(&staged);
                    return Err(e);
                }
            };
            let tmp = temp_path(&self.dir, name);
            if let Err(cause) = write_synced(&tmp, bytes) {
                let _ = fs::remove_file(&tmp);
                cleanup(&staged);
                return Err(OutputError::Write { path, cause });
            }
            staged.push((tmp, path));
        }
        let mut written = Vec::with_capacity(staged.len());
        for (i, (tmp, path)) in staged.iter().enumerate() {
            if let Err(cause) = fs::rename(tmp, path) {
                cleanup(&staged[i..]);
                return Err(OutputError::Write {
                    path: path.clone(),
                    cause,
                });
            }
            written.push(path.clone());
        }
        Ok(written)
    }

    fn checked_path(&self, name: &str) -> Result<PathBuf, OutputError> {
        let plain = Path::new(name)
            .file_name()
            .is_some_and(|f| f == std::ffi::OsStr::new(name));
        if plain {
            Ok(self.dir.join(name))
        } else {
            Err(OutputError::BadName(name.to_string()))
        }
    }

    /// Writes `bytes` to `dir/name` atomically; returns the path written.
    ///
    /// # Errors
    /// [`OutputError`] naming the file; the previous file, if any, is intact.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, OutputError> {
        let path = self.checked_path(name)?;
        write_atomic(&path, bytes)?;
        Ok(path)
    }
}

/// A temporary name in `dir`, unique within this process and across processes.
fn temp_path(dir: &Path, name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so `path` holds either its old content or the new one.
///
/// # Errors
/// [`OutputError::Write`] naming `path`; the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = temp_path(dir, &name);
    let err = |cause| OutputError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let result = write_synced(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "rnn-gradcheck-output-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn writes_replace_files_and_leave_no_temporaries() {
        let d = scratch("replace");
        let out = OutputDir::create(d.join("a/b")).unwrap();
        out.write("x.csv", b"1").unwrap();
        out.write("x.csv", b"22").unwrap();
        assert_eq!(fs::read(d.join("a/b/x.csv")).unwrap(), b"22");
        let names: Vec<_> = fs::read_dir(d.join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.csv")]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_file_in_the_way_is_a_clear_error() {
        let d = scratch("file");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), b"").unwrap();
        let err = OutputDir::create(d.join("f")).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        let err = OutputDir::create(d.join("f/sub")).unwrap_err();
        assert!(
            err.to_string().contains("cannot create output directory"),
            "{err}"
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_batch_renames_nothing() {
        let d = scratch("batch");
        let out = OutputDir::create(&d).unwrap();
        out.write_all([("a.txt", &b"old a"[..]), ("b.txt", &b"old b"[..])])
            .unwrap();
        // The second name is invalid: the batch fails before any rename.
        let err = out
            .write_all([("a.txt", &b"new a"[..]), ("../b.txt", &b"new b"[..])])
            .unwrap_err();
        assert!(matches!(err, OutputError::BadName(_)), "{err}");
        assert_eq!(fs::read(d.join("a.txt")).unwrap(), b"old a");
        let paths = out
            .write_all([("a.txt", &b"new a"[..]), ("b.txt", &b"new b"[..])])
            .unwrap();
        assert_eq!(paths, vec![d.join("a.txt"), d.join("b.txt")]);
        assert_eq!(fs::read(d.join("b.txt")).unwrap(), b"new b");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn names_must_be_plain() {
        let d = scratch("names");
        let out = OutputDir::create(&d).unwrap();
        for bad in ["../x", "a/b", "", "."] {
            assert!(
                matches!(out.write(bad, b""), Err(OutputError::BadName(_))),
                "{bad}"
            );
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let d = scratch("keep");
        let out = OutputDir::create(&d).unwrap();
        out.write("r.txt", b"old").unwrap();
        // A directory squatting on the temporary name's target makes the rename fail:
        // renaming a file over a non-empty directory is an error.
        fs::create_dir_all(d.join("dir.txt/inner")).unwrap();
        assert!(out.write("dir.txt", b"new").is_err());
        assert_eq!(fs::read(d.join("r.txt")).unwrap(), b"old");
        let leftovers = fs::read_dir(&d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        assert_eq!(leftovers, 0);
        fs::remove_dir_all(&d).unwrap();
    }
}
