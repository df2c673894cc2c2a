//! argon2id hashing and verification with bounded concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use argon2::password_hash::PasswordHash;
use argon2::password_hash::rand_core::OsRng;
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Hashing did not run.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The blocking pool is gone, or the parameters are unusable.
    #[error("password hashing failed")]
    Failed,
    /// The client of the request left before its turn came: nobody waits for the answer.
    #[error("the client left before its password was hashed")]
    ClientLeft,
}

/// The shortest password the admin API and CLI accept.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longer inputs are refused before hashing, so a huge body cannot buy a long hash.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
///
/// Each permit owns one reusable 19 MiB work area: the allocator never sees 19 MiB blocks
/// come and go (glibc's dynamic mmap threshold then keeps freed blocks in per-thread arenas,
/// and RSS grows to arenas x 19 MiB), and memory is bounded by permits x 19 MiB. The permit
/// and the work area move into the blocking task, so a request that is dropped mid-hash
/// (client gone) keeps its permit until the hash really ends.
///
/// The work areas are kept for the life of the process: freeing one and allocating it again
/// later lets glibc's dynamic mmap threshold move it into a heap arena, whose memory is not
/// returned, so RSS would climb by 19 MiB at a time (measured in the soak of bench/).
///
/// A request waits for a permit in a queue that holds only live requests: one whose client
/// has gone (`CLIENT` says so, or its future was dropped) leaves the queue at once, and if
/// its client left after it took its permit but before its hash started, the hash is skipped.
/// A throttled attempt never joins the queue (`login::check_credentials` refuses it first).
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    areas: std::sync::Mutex<Vec<Vec<argon2::Block>>>,
    /// Requests waiting for a permit right now.
    waiting: std::sync::atomic::AtomicUsize,
    /// Hashes run to the end since start.
    completed: std::sync::atomic::AtomicU64,
    max_concurrent: usize,
}

tokio::task_local! {
    /// Whether the client whose request runs on this task is still waiting for the answer.
    /// The HTTP layer sets it around each request (`http::run_to_completion`, which lets
    /// writes finish when the client leaves); the hasher reads it, so that a request whose
    /// client has gone gives up its place in the queue instead of buying a hash for nobody.
    pub static CLIENT: ClientPresence;
}

/// Set once the client of a request has gone (its connection closed before the answer).
#[derive(Debug, Clone, Default)]
pub struct ClientPresence(Arc<Presence>);

#[derive(Debug, Default)]
struct Presence {
    gone: AtomicBool,
    notify: tokio::sync::Notify,
}

impl ClientPresence {
    /// The client has gone: wakes whatever waits on its behalf.
    pub fn leave(&self) {
        self.0.gone.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn has_left(&self) -> bool {
        self.0.gone.load(Ordering::SeqCst)
    }

    /// Completes once the client has gone.
    pub async fn left(&self) {
        let notified = self.0.notify.notified();
        tokio::pin!(notified);
        // Registered before the check, so that a `leave` in between is not missed.
        notified.as_mut().enable();
        if self.has_left() {
            return;
        }
        notified.await;
    }
}

/// The presence of the client of the request running on this task; a task outside any
/// request (the CLI, a test) has a client that never leaves.
fn current_client() -> ClientPresence {
    CLIENT.try_with(Clone::clone).unwrap_or_default()
}

/// Decrements a counter when dropped: the queue length stays right however a wait ends.
struct Queued<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Clears the flag when dropped: tells a blocking task not yet started that nobody waits for
/// its result any more.
struct Wanted(Arc<AtomicBool>);

impl Drop for Wanted {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$gT4uviu6UtuBTPxSEzQ7bA$u8tJHM145E0lrIKXXKHDbQ88Vslh6eK3xjDX7dcUHE4";

fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

fn area(blocks: usize, area: &mut Vec<argon2::Block>) -> &mut [argon2::Block] {
    if area.len() < blocks {
        area.resize(blocks, argon2::Block::new());
    }
    &mut area[..blocks]
}

fn hash_blocking(password: &str, mem: &mut Vec<argon2::Block>) -> Result<String, HashError> {
    use argon2::password_hash::{Output, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_buf)
        .map_err(|_| HashError::Failed)?;
    let p = params();
    let mut out = [0u8; 32];
    argon2()
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            area(p.block_count(), mem),
        )
        .map_err(|_| HashError::Failed)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: p.try_into().map_err(|_| HashError::Failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|_| HashError::Failed)?),
    };
    Ok(phc.to_string())
}

fn verify_blocking(password: &str, phc: &str, mem: &mut Vec<argon2::Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let Ok(alg) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map(Version::try_from)
        .unwrap_or(Ok(Version::V0x13))
    else {
        return false;
    };
    let Ok(p) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = p.block_count();
    if Argon2::new(alg, version, p)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, area(blocks, mem))
        .is_err()
    {
        return false;
    }
    crate::crypto::constant_time_eq(&out, expected.as_bytes())
}

impl PasswordHasher {
    /// `max_concurrent` hashes run at once (each takes 19 MiB); the rest wait their turn.
    pub fn new(max_concurrent: usize) -> Arc<Self> {
        let max_concurrent = max_concurrent.clamp(1, 64);
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            areas: std::sync::Mutex::new(Vec::new()),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            completed: std::sync::atomic::AtomicU64::new(0),
            max_concurrent,
        })
    }

    /// Requests waiting for a permit right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Hashes run to the end since the process started.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::SeqCst)
    }

    /// Takes every permit until the guard is dropped, so that requests queue up: for tests of
    /// what happens to a queued request (a client that leaves, a node shutting down).
    #[doc(hidden)]
    pub async fn hold_all_permits(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let all = u32::try_from(self.max_concurrent).ok()?;
        self.permits.acquire_many(all).await.ok()
    }

    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let client = current_client();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let queued = Queued(&self.waiting);
        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.map_err(|_| HashError::Failed)?,
            () = client.left() => return Err(HashError::ClientLeft),
        };
        drop(queued);
        let wanted = Arc::new(AtomicBool::new(true));
        let _wanted = Wanted(wanted.clone());
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            if !wanted.load(Ordering::SeqCst) || client.has_left() {
                // The request was dropped (its client left) before its hash started.
                return None;
            }
            let mut mem = this
                .areas
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .unwrap_or_default();
            let cpu_before = crate::telemetry::thread_cpu_seconds();
            let out = f(&mut mem);
            if let (Some(before), Some(after)) =
                (cpu_before, crate::telemetry::thread_cpu_seconds())
            {
                crate::telemetry::password_hashed(after - before);
            }
            this.areas
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(mem);
            this.completed.fetch_add(1, Ordering::SeqCst);
            drop(permit);
            Some(out)
        })
        .await
        .map_err(|_| HashError::Failed)?
        .ok_or(HashError::ClientLeft)
    }

    pub async fn hash(self: &Arc<Self>, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move |mem| hash_blocking(&password, mem)).await?
    }

    /// Verifies `password` against `phc`, or against the dummy hash when `phc` is `None`
    /// (unknown user) so that both cases cost the same; the dummy never matches.
    pub async fn verify(
        self: &Arc<Self>,
        password: &str,
        phc: Option<&str>,
    ) -> Result<bool, HashError> {
        let known = phc.is_some();
        let phc = phc.unwrap_or(DUMMY_HASH).to_owned();
        let password = password.to_owned();
        let matched = self
            .run(move |mem| verify_blocking(&password, &phc, mem))
            .await?;
        Ok(known && matched)
    }
}

/// Checks a new password's length; returns the reason when it is refused.
pub fn check_new_password(password: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err("password must be at least 8 characters long");
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err("password must be at most 1024 bytes long");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hasher = PasswordHasher::new(2);
        let phc = hasher.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse", Some(&phc)).await.unwrap());
        assert!(!hasher.verify("wrong horse", Some(&phc)).await.unwrap());
        assert!(
            !hasher
                .verify("latchkey dummy password for unknown users", None)
                .await
                .unwrap()
        );
        assert!(!hasher.verify("x", Some("not a phc string")).await.unwrap());
        // The dummy hash uses the same parameters as real ones, so it costs the same.
        let real = PasswordHash::new(&phc).unwrap();
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(real.params, dummy.params);
        assert_eq!(real.algorithm, dummy.algorithm);
    }

    /// A request that is dropped while it waits (its client left) never hashes, and leaves
    /// the queue at once.
    #[tokio::test]
    async fn a_dropped_request_leaves_the_queue_unhashed() {
        let hasher = PasswordHasher::new(1);
        let held = hasher.hold_all_permits().await.unwrap();
        let queued = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.verify("correct horse", None).await }
        });
        while hasher.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        queued.abort();
        let _ = queued.await;
        assert_eq!(hasher.waiting(), 0, "the dropped request left the queue");
        drop(held);
        assert!(!hasher.verify("x", None).await.unwrap());
        assert_eq!(
            hasher.completed(),
            1,
            "only the request still wanted was hashed"
        );
    }

    #[test]
    fn hashes_interoperate_with_the_standard_phc_verifier() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier, SaltString};
        let mut mem = Vec::new();
        // Ours verifies with the argon2 crate's own verifier...
        let ours = hash_blocking("correct horse", &mut mem).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2().verify_password(b"correct horse", &parsed).is_ok());
        // ...and a standard hash (like the dummy) verifies with ours.
        let salt = SaltString::generate(&mut OsRng);
        let standard = argon2()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking("battery staple", &standard, &mut mem));
        assert!(!verify_blocking("battery stapler", &standard, &mut mem));
        assert!(verify_blocking(
            "latchkey dummy password for unknown users",
            DUMMY_HASH,
            &mut mem
        ));
    }
}
