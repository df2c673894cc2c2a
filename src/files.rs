//! Files and directories that hold secrets (the generated master key, the embedded SQLite
//! database with its WAL and shared-memory files, and the directory they live in): created
//! readable by their owner only, whatever the process's umask.
//!
//! On Unix that means mode 0700 for directories Latchkey creates and 0600 for files. Elsewhere
//! the platform's defaults apply. Nothing here reads or writes what the files hold beyond the
//! master key's bytes; callers decide what to put in them.

use std::path::Path;

/// Permission bits a private file or directory must not have: any access by group or others.
#[cfg(unix)]
const SHARED_BITS: u32 = 0o077;

/// Creates `dir` and any missing parents. What this call creates is mode 0700; directories
/// that already exist are left as they are (they may be shared ones, such as `/var/lib`).
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes a new file readable by its owner only (mode 0600 on Unix). Fails if it exists.
pub fn write_new_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = private_options().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// What `make_private` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// The file was missing and has been created, empty, mode 0600.
    Created,
    /// The file was already readable by its owner only.
    AlreadyPrivate,
    /// Group or others had access (the old mode is given); their bits have been removed.
    Tightened { old_mode: u32 },
    /// The file does not exist (only from `tighten_if_present`).
    Missing,
}

/// Makes sure `path` exists and is readable by its owner only: creates it empty with mode
/// 0600 when missing, and removes group and other permission bits when it exists with them.
pub fn make_private(path: &Path) -> std::io::Result<Privacy> {
    match private_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(Privacy::Created),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => tighten_if_present(path),
        Err(e) => Err(e),
    }
}

/// Removes group and other permission bits from `path` if it exists; creates nothing.
pub fn tighten_if_present(path: &Path) -> std::io::Result<Privacy> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Privacy::Missing),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & SHARED_BITS != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !SHARED_BITS))?;
            return Ok(Privacy::Tightened { old_mode: mode });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    Ok(Privacy::AlreadyPrivate)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn scratch() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("latchkey-files-{:016x}", rand::random::<u64>()))
    }

    /// Directories created here are 0700 at every level created; files 0600; a file that
    /// others could read loses those bits, and one that is already private is left alone.
    #[test]
    fn directories_and_files_are_private_to_their_owner() {
        let root = scratch();
        let dir = root.join("a").join("b");
        create_private_dir_all(&dir).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        // An existing directory is not changed.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir_all(&dir).unwrap();
        assert_eq!(mode(&root), 0o755);

        let file = dir.join("db");
        assert_eq!(make_private(&file).unwrap(), Privacy::Created);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(make_private(&file).unwrap(), Privacy::AlreadyPrivate);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            make_private(&file).unwrap(),
            Privacy::Tightened { old_mode: 0o644 }
        );
        assert_eq!(mode(&file), 0o600);
        assert_eq!(
            tighten_if_present(&dir.join("absent")).unwrap(),
            Privacy::Missing
        );
        assert!(!dir.join("absent").exists());

        let key = dir.join("key");
        write_new_private_file(&key, b"secret").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert!(write_new_private_file(&key, b"again").is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
