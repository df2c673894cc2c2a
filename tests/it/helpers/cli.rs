//! `Latchkey`: the `latchkey` binary's operator commands run as a real process with a clean
//! environment, for the command-line tests.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::TEST_MASTER_KEY;

/// The binary with a clean environment: only the given `LATCHKEY_*` settings, run from an
/// empty directory so no `config/latchkey.toml` is picked up.
pub struct Latchkey {
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
}

impl Latchkey {
    pub fn new(database_url: &str) -> Self {
        let dir = latchkey::store::testing::fresh_sqlite_path()
            .parent()
            .unwrap()
            .join("cwd");
        std::fs::create_dir_all(&dir).unwrap();
        Latchkey {
            env: vec![
                ("LATCHKEY_DATABASE_URL".into(), database_url.into()),
                ("LATCHKEY_MASTER_KEY".into(), TEST_MASTER_KEY.into()),
                ("LATCHKEY_LOG".into(), "warn".into()),
            ],
            dir,
        }
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout as JSON (null when empty).
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let out = self.run(args, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "latchkey {args:?} failed: {}\nstdout: {stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
        }
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "latchkey {args:?} succeeded unexpectedly"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}
