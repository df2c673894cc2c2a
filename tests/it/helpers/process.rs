//! `ServerProcess`: the real `latchkey serve` binary as a child process, for tests about the
//! process itself (logs, signals, several nodes, limits of the operating system).

use reqwest::Method;
use serde_json::Value;

use super::{ADMIN_TOKEN, TEST_MASTER_KEY, admin_call, no_redirect_client};

/// The real `latchkey serve` binary as a child process on a free loopback port, with its log
/// written to a file; killed when dropped.
pub struct ServerProcess {
    pub base: String,
    pub log_path: std::path::PathBuf,
    pub child: std::process::Child,
    pub http: reqwest::Client,
}

impl ServerProcess {
    /// Starts a node over `database_url` and waits (at most 20 s) until `/readyz` answers.
    pub async fn start(database_url: &str, extra_env: &[(&str, &str)]) -> ServerProcess {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let dir = latchkey::store::testing::fresh_sqlite_path()
            .parent()
            .unwrap()
            .join(format!("node-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command
            .arg("serve")
            .env_clear()
            .env("LATCHKEY_ISSUER", &base)
            .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_DATABASE_URL", database_url)
            .env("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LATCHKEY_MASTER_KEY", TEST_MASTER_KEY)
            .env("LATCHKEY_LOG", "debug")
            .env("LATCHKEY_LOG_FORMAT", "json")
            .current_dir(&dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let node = ServerProcess {
            base,
            log_path,
            child,
            http: no_redirect_client(false),
        };
        for _ in 0..400 {
            if let Ok(r) = node.http.get(format!("{}/readyz", node.base)).send().await
                && r.status() == 200
            {
                return node;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "node did not become ready; log: {}",
            std::fs::read_to_string(&node.log_path).unwrap_or_default()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `admin_call` on this node.
    pub async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        admin_call(&self.http, &self.base, method, path, body).await
    }

    /// Sends SIGTERM and waits (at most `grace`) for the process to exit; its exit status.
    pub fn terminate(&mut self, grace: std::time::Duration) -> Option<std::process::ExitStatus> {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
